//! What a 403 says: Vault answers 403 both for a token it no longer accepts and for a valid
//! token whose policy does not allow the request, and only the first is cured by logging in
//! again. The client reads Vault's `errors` strings to tell them apart; once it has decided,
//! `error_map::to_error` maps the 403 like any other answer.

/// How Vault classifies a 403, from its `errors` strings (Vault 1.16+ documents `"invalid
/// token"` for a revoked, expired or unknown token; OpenBao and older Vault answer a bare
/// `"permission denied"` for a bad token and a multi-error `"1 error occurred: * permission
/// denied"` for a policy denial).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Denial {
    /// The token itself is not accepted (expired, revoked, unknown).
    TokenRejected,
    /// A valid token whose policy does not allow this request.
    Policy,
    /// A bare `"permission denied"`: a rejected token on OpenBao and Vault before 1.16, but
    /// not proof of it; the caller confirms with `lookup-self`.
    Unclear,
}

/// Classifies a 403 by what Vault says (see [`Denial`]).
pub(super) fn classify_403(errors: &[String]) -> Denial {
    if errors.iter().any(|e| e.contains("invalid token")) {
        Denial::TokenRejected
    } else if errors.len() == 1 && errors[0].trim() == "permission denied" {
        Denial::Unclear
    } else {
        Denial::Policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_are_classified_by_what_vault_says() {
        let c = |e: &[&str]| classify_403(&e.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        // Vault 1.16+ for an expired/revoked token.
        assert_eq!(
            c(&["permission denied", "invalid token"]),
            Denial::TokenRejected
        );
        // OpenBao / older Vault for a bad token.
        assert_eq!(c(&["permission denied"]), Denial::Unclear);
        // A policy denial (go-multierror wrapped), on both.
        assert_eq!(
            c(&["1 error occurred:\n\t* permission denied\n\n"]),
            Denial::Policy
        );
        assert_eq!(
            c(&[
                "preflight capability check returned 403, please ensure client's policies grant access to path \"x/\""
            ]),
            Denial::Policy
        );
    }
}
