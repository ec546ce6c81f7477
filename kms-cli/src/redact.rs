//! What may be shown of command-line input that can hold a credential or a value: store URIs
//! (an inline `auth.token=…`, user-info) and `put --value`. A leaf: used by the `Debug` of
//! the command line and of the target, and by reports that name a store that did not open.

use std::fmt;

/// A store as given on the command line (a URI or a configuration name), with everything that
/// could be a credential replaced by `…`: the user-info, every query value and a fragment.
/// The scheme, host, path and query keys stay, so the store can still be recognised.
///
/// ```
/// use kms_cli::redact::store_spec;
///
/// assert_eq!(
///     store_spec("vault+https://vault:8200/secret/app?auth.token=hvs.T0P&cache.ttl=5m"),
///     "vault+https://vault:8200/secret/app?auth.token=…&cache.ttl=…",
/// );
/// assert_eq!(store_spec("https://user:pw@host/x#frag"), "https://…@host/x#…");
/// assert_eq!(store_spec("payments"), "payments");
/// ```
pub fn store_spec(spec: &str) -> String {
    let Some((scheme, rest)) = spec.split_once("://") else {
        return spec.to_owned();
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, _)) => (r, true),
        None => (rest, false),
    };
    let (base, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match base.find('/') {
        Some(i) => base.split_at(i),
        None => (base, ""),
    };
    let authority = match authority.rfind('@') {
        Some(i) => format!("…{}", &authority[i..]),
        None => authority.to_owned(),
    };
    let mut out = format!("{scheme}://{authority}{path}");
    if let Some(query) = query {
        let keys: Vec<String> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) => format!("{k}=…"),
                None => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&keys.join("&"));
    }
    if fragment {
        out.push_str("#…");
    }
    out
}

/// Formats as [`store_spec`] does (for `Debug` impls).
pub struct Spec<'a>(pub &'a str);

impl fmt::Debug for Spec<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&store_spec(self.0), f)
    }
}

/// An optional [`Spec`].
pub struct OptSpec<'a>(pub Option<&'a str>);

impl fmt::Debug for OptSpec<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0.map(Spec), f)
    }
}

/// A value that is never shown: `Some(<hidden>)` / `None` in `Debug`.
pub struct Hidden(pub bool);

impl fmt::Debug for Hidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0 { "Some(<hidden>)" } else { "None" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_query_value_user_info_or_fragment_survives() {
        for (spec, shown) in [
            (
                "vault+http://127.0.0.1:8200/secret?auth.token=T0P",
                "vault+http://127.0.0.1:8200/secret?auth.token=…",
            ),
            ("memory://", "memory://"),
            ("memory://?nonsense", "memory://?nonsense"),
            (
                "aws-sm://eu-west-1/app?a=1&&b=T0P",
                "aws-sm://eu-west-1/app?a=…&b=…",
            ),
            ("vault://T0P@host", "vault://…@host"),
            ("vault://host?x=T0P#T0P", "vault://host?x=…#…"),
            ("keyring://svc#T0P?y=T0P", "keyring://svc#…"),
        ] {
            assert_eq!(store_spec(spec), shown, "{spec}");
            assert!(!format!("{:?}", Spec(spec)).contains("T0P"));
        }
        assert_eq!(format!("{:?}", OptSpec(None)), "None");
        assert_eq!(format!("{:?}", Hidden(true)), "Some(<hidden>)");
    }
}
