//! The one place Vault failures become [`kms_core::Error`]s: [`to_error`] maps a [`Failure`]
//! (Vault's status and `errors` strings, a transport error, an answer that is not Vault's)
//! to an error kind and a message naming the request. Its helpers stay private.

use std::error::Error as StdError;

use kms_core::{Error, ErrorKind};

use crate::BACKEND;

/// A failed Vault request, before it is mapped.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Vault answered with a non-success status and its `errors` list.
    Status {
        /// The HTTP status.
        status: u16,
        /// Vault's `errors` strings (paths and reasons, never secret values).
        errors: Vec<String>,
    },
    /// The request never got an answer (connect, DNS, TLS, timeout). `address` is the
    /// configured server address (named in the message).
    Transport {
        /// The underlying error (its URL is removed: the address is named separately).
        error: reqwest::Error,
        /// The server address as configured.
        address: String,
    },
    /// The answer could not be interpreted (what was wrong, never the body itself).
    Malformed(String),
    /// The server answered, but not as Vault does (a 4xx without Vault's JSON error body,
    /// HTTP against an HTTPS listener), or Vault says the namespace does not exist: a wrong
    /// address or namespace. The string is the hint.
    NotVault(String),
}

/// Maps a [`Failure`] to an [`Error`]; `what` names the request (`"get secret/data/app/db"`).
///
/// | Vault says | Kind |
/// |---|---|
/// | 404 "no handler for route" (nothing is mounted there) | `Configuration` naming the mount |
/// | 404 otherwise | `NotFound` |
/// | 400 "check-and-set parameter did not match" | `Conflict` |
/// | 400 "check-and-set parameter required" (the mount or key sets `cas_required`) | `Configuration` |
/// | 400 otherwise | `InvalidInput` |
/// | 401 | `Unauthenticated` |
/// | 403 (after classification, see the client) | `PermissionDenied` |
/// | 412 "required index state not present": a consistency delay Vault says to retry | `Unavailable` (retryable) |
/// | 429 | `RateLimited` |
/// | 500, 502, 503 (sealed, standby), 504 | `Unavailable` |
/// | timeout | `Timeout` |
/// | connect / DNS / TLS failure (the message names the address and the cause) | `Unavailable` |
/// | a 4xx that is not Vault's JSON, HTTP against HTTPS | `Configuration` (wrong address) |
/// | malformed JSON, unexpected shape | `InvalidData` |
pub(crate) fn to_error(failure: Failure, what: &str) -> Error {
    match failure {
        Failure::Status { status, errors } => {
            let reason = summarize(&errors);
            let kind = match status {
                // Vault's router: nothing is mounted there (a mount removed after the store
                // checked it), not a missing key.
                404 if reason.contains("no handler for route") => ErrorKind::Configuration,
                404 => ErrorKind::NotFound,
                412 => ErrorKind::Unavailable,
                400 if reason.contains("check-and-set parameter required") => {
                    ErrorKind::Configuration
                }
                400 if reason.contains("check-and-set") => ErrorKind::Conflict,
                400 => ErrorKind::InvalidInput,
                401 => ErrorKind::Unauthenticated,
                403 => ErrorKind::PermissionDenied,
                429 => ErrorKind::RateLimited,
                500 | 502 | 503 | 504 => ErrorKind::Unavailable,
                _ => ErrorKind::Backend,
            };
            let note = if reason.contains("sealed") {
                " (sealed)"
            } else if status == 412 {
                " (consistency delay; Vault says to retry)"
            } else if status == 404 && kind == ErrorKind::Configuration {
                " (nothing is mounted at this path: check the mount setting)"
            } else if kind == ErrorKind::Configuration {
                " (the mount or key requires check-and-set: use store_cas)"
            } else {
                ""
            };
            let message = if reason.is_empty() {
                format!("{what}: HTTP {status}{note}")
            } else {
                format!("{what}: HTTP {status}{note}: {reason}")
            };
            Error::new(kind, message)
                .with_backend(BACKEND)
                .with_code(status.to_string())
        }
        Failure::Transport { error, address } => {
            let kind = if error.is_timeout() {
                ErrorKind::Timeout
            } else {
                ErrorKind::Unavailable
            };
            let cause = transport_cause(&error);
            // The message names the address and the cause; the source keeps reqwest's chain
            // (no headers or bodies in it; the URL is removed, the address is in the message).
            Error::new(kind, format!("{what}: {address}: {cause}"))
                .with_backend(BACKEND)
                .with_source(error.without_url())
        }
        Failure::Malformed(reason) => {
            Error::new(ErrorKind::InvalidData, format!("{what}: {reason}")).with_backend(BACKEND)
        }
        Failure::NotVault(hint) => {
            Error::new(ErrorKind::Configuration, format!("{what}: {hint}")).with_backend(BACKEND)
        }
    }
}

/// The cause of a transport failure in words a newcomer can act on: refused, DNS, TLS
/// against a plain-HTTP server, an untrusted certificate, a timeout.
fn transport_cause(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".into();
    }
    let mut chain = Vec::new();
    let mut source: Option<&(dyn StdError + 'static)> = error.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return "connection refused (is Vault running and listening there?)".into();
                }
                std::io::ErrorKind::ConnectionReset => return "connection reset".into(),
                _ => {}
            }
        }
        chain.push(s.to_string().to_lowercase());
        source = s.source();
    }
    let all = chain.join(": ");
    if all.contains("dns error")
        || all.contains("failed to lookup address")
        || all.contains("name or service not known")
        || all.contains("no address associated")
    {
        "cannot resolve the host name (DNS)".into()
    } else if all.contains("invalidcontenttype")
        || all.contains("corrupt message")
        || all.contains("wrong version number")
    {
        "TLS handshake failed: the server does not speak TLS (use an http:// address?)".into()
    } else if all.contains("certificate") || all.contains("unknownissuer") {
        "TLS certificate not trusted (add its CA with ca_cert_pem or VAULT_CACERT)".into()
    } else if error.is_connect() {
        "cannot connect".into()
    } else {
        "transport error".into()
    }
}

/// Vault's error strings, joined and bounded (they hold paths and reasons, not values).
fn summarize(errors: &[String]) -> String {
    let mut joined = errors.join("; ");
    if joined.len() > 300 {
        let mut cut = 300;
        while !joined.is_char_boundary(cut) {
            cut -= 1;
        }
        joined.truncate(cut);
        joined.push('…');
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, errors: &[&str]) -> ErrorKind {
        to_error(
            Failure::Status {
                status,
                errors: errors.iter().map(|s| s.to_string()).collect(),
            },
            "op",
        )
        .kind()
    }

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(status(404, &[]), ErrorKind::NotFound);
        // Vault's router: nothing mounted there, not a missing key.
        assert_eq!(
            status(
                404,
                &["no handler for route \"gone/data/k\". route entry not found."]
            ),
            ErrorKind::Configuration
        );
        assert_eq!(
            status(403, &["permission denied"]),
            ErrorKind::PermissionDenied
        );
        assert_eq!(status(401, &[]), ErrorKind::Unauthenticated);
        assert_eq!(status(429, &[]), ErrorKind::RateLimited);
        assert_eq!(status(500, &[]), ErrorKind::Unavailable);
        assert_eq!(status(502, &[]), ErrorKind::Unavailable);
        assert_eq!(status(503, &["Vault is sealed"]), ErrorKind::Unavailable);
        // 412: a consistency delay Vault says to retry, not a lost race.
        assert_eq!(
            status(412, &["required index state not present"]),
            ErrorKind::Unavailable
        );
        assert!(ErrorKind::Unavailable.is_retryable());
        assert_eq!(
            status(400, &["check-and-set parameter required for this call"]),
            ErrorKind::Configuration
        );
        assert_eq!(
            status(
                400,
                &["check-and-set parameter did not match the current version"]
            ),
            ErrorKind::Conflict
        );
        assert_eq!(status(400, &["bad"]), ErrorKind::InvalidInput);
        assert_eq!(status(418, &[]), ErrorKind::Backend);
    }

    #[test]
    fn messages_are_bounded_and_name_the_request() {
        let long = "x".repeat(1000);
        let err = to_error(
            Failure::Status {
                status: 503,
                errors: vec!["Vault is sealed".into(), long],
            },
            "get secret/data/a",
        );
        let msg = err.to_string();
        assert!(msg.contains("get secret/data/a"), "{msg}");
        assert!(msg.contains("(sealed)"), "{msg}");
        assert!(msg.len() < 500, "{msg}");
        assert_eq!(err.backend(), Some("vault"));
        assert_eq!(err.code(), Some("503"));
    }

    #[test]
    fn malformed_is_invalid_data() {
        let err = to_error(Failure::Malformed("not JSON".into()), "op");
        assert_eq!(err.kind(), ErrorKind::InvalidData);
    }
}
