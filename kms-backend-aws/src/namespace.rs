//! [`Namespace`]: the name prefix that lets many services share one account.

use kms_core::{Error, ErrorKind, KeyName, KeyPrefix, Result};

/// Secrets Manager's longest secret name.
pub(crate) const MAX_SECRET_NAME_LEN: usize = 512;

/// Maps key names to secret names (`<namespace>/<key>`) and back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Namespace(Option<String>);

impl Namespace {
    /// A namespace validated with the key-name rules (no `..`, no empty segments), so it
    /// cannot reach outside itself. One trailing `/` is allowed (`"team-a/"`).
    ///
    /// An empty namespace (`""`, `"/"`, `"//"`) is an [`ErrorKind::Configuration`] error: it
    /// would name the whole account, which is what *not* setting a namespace means, and a
    /// namespace that came out empty (an unset variable) must not silently become that.
    pub(crate) fn new(prefix: &str) -> Result<Self> {
        let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
        if trimmed.trim_matches('/').is_empty() {
            return Err(Error::new(
                ErrorKind::Configuration,
                format!(
                    "namespace {prefix:?} is empty: it would be the whole account; leave \
                     `namespace` unset for that, or name one (e.g. \"payments/prod\")"
                ),
            ));
        }
        let valid = KeyName::new(trimmed).map_err(|e| {
            Error::new(
                ErrorKind::Configuration,
                format!("invalid namespace {prefix:?}: {}", e.message()),
            )
        })?;
        Ok(Self(Some(valid.as_str().to_owned())))
    }

    /// The secret name of `key`.
    pub(crate) fn secret_name(&self, key: &KeyName) -> Result<String> {
        let name = match &self.0 {
            Some(ns) => format!("{ns}/{key}"),
            None => key.as_str().to_owned(),
        };
        if name.len() > MAX_SECRET_NAME_LEN {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "secret name of {} bytes is longer than Secrets Manager's {MAX_SECRET_NAME_LEN}",
                    name.len()
                ),
            ));
        }
        Ok(name)
    }

    /// The server-side name filter for `prefix` (`None`: list everything).
    pub(crate) fn filter(&self, prefix: &KeyPrefix) -> Option<String> {
        match (&self.0, prefix.is_empty()) {
            (None, true) => None,
            (None, false) => Some(prefix.as_str().to_owned()),
            (Some(ns), _) => Some(format!("{ns}/{}", prefix.as_str())),
        }
    }

    /// The key name of a listed secret, if it is inside this namespace, starts with
    /// `prefix` (case-sensitively: AWS's name filter is not) and is a valid key name.
    pub(crate) fn key_of(&self, secret_name: &str, prefix: &KeyPrefix) -> Option<KeyName> {
        let rest = match &self.0 {
            Some(ns) => secret_name.strip_prefix(ns.as_str())?.strip_prefix('/')?,
            None => secret_name,
        };
        if !rest.starts_with(prefix.as_str()) {
            return None;
        }
        KeyName::new(rest).ok()
    }

    /// The namespace, for `Display`.
    pub(crate) fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> KeyName {
        KeyName::new(s).unwrap()
    }

    #[test]
    fn names_round_trip_through_the_namespace() {
        let ns = Namespace::new("team-a/svc/").unwrap();
        let k = key("db/password");
        let name = ns.secret_name(&k).unwrap();
        assert_eq!(name, "team-a/svc/db/password");
        assert_eq!(ns.key_of(&name, &KeyPrefix::all()), Some(k));
        let p = KeyPrefix::new("db/").unwrap();
        assert_eq!(ns.filter(&p).as_deref(), Some("team-a/svc/db/"));
        // Other namespaces, case variants and invalid names are not ours.
        assert_eq!(ns.key_of("team-a/other/db/password", &p), None);
        assert_eq!(ns.key_of("team-a/svc/DB/password", &p), None);
        assert_eq!(ns.key_of("team-a/svc/db/pass#word", &p), None);
        assert_eq!(ns.key_of("team-a/svc/db/a@b+c", &p), Some(key("db/a@b+c")));
    }

    #[test]
    fn no_namespace_lists_everything() {
        let ns = Namespace::default();
        assert_eq!(ns.filter(&KeyPrefix::all()), None);
        assert_eq!(ns.secret_name(&key("a")).unwrap(), "a");
    }

    #[test]
    fn an_empty_namespace_is_a_configuration_error() {
        for empty in ["", "/", "//", "///"] {
            let err = Namespace::new(empty).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Configuration, "{empty:?}: {err}");
            assert!(err.message().contains("whole account"), "{err}");
        }
    }

    #[test]
    fn one_trailing_slash_is_allowed() {
        assert_eq!(Namespace::new("team-a/").unwrap().as_str(), Some("team-a"));
        assert_eq!(Namespace::new("team-a").unwrap().as_str(), Some("team-a"));
    }

    #[test]
    fn traversal_in_the_namespace_is_a_configuration_error() {
        for bad in ["../other", "a/../b", "a//b", "sp ace", "/a", "a//", "./a"] {
            let err = Namespace::new(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Configuration, "{bad}: {err}");
        }
    }

    #[test]
    fn overlong_secret_names_are_rejected() {
        let ns = Namespace::new(&"n".repeat(256)).unwrap();
        let err = ns.secret_name(&key(&"k".repeat(256))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}
