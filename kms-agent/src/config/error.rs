//! Configuration errors that name the offending key, in the form the `kms` facade uses
//! (`` `agent.tcp.address`: … ``), so one file gives one style of message.

use kms::{Error, ErrorKind};

/// An error about `key` (a dotted path as written in the file). `what` says what is wrong and
/// what is accepted; it never quotes a secret.
pub(crate) fn config_error(key: &str, what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Configuration, format!("`{key}`: {what}"))
}

/// Deserialises `value` into `T`, naming the failing key as `prefix.path` (serde's message,
/// which names an unknown field and lists the accepted ones).
pub(crate) fn deserialize<T: serde::de::DeserializeOwned>(
    prefix: &str,
    value: toml::Value,
) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." || path.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix}.{path}")
        };
        config_error(&key, e.into_inner().message())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        port: Option<u16>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        inner: Option<Inner>,
    }

    #[test]
    fn names_the_unknown_key_with_its_prefix() {
        let v: toml::Value = toml::from_str("[inner]\nprot = 1").unwrap();
        let e = deserialize::<Outer>("agent", v).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Configuration);
        assert!(
            e.message()
                .starts_with("`agent.inner.prot`: unknown field `prot`"),
            "{e}"
        );
        assert!(e.message().contains("`port`"), "{e}");
    }

    #[test]
    fn names_a_bad_value_by_its_key() {
        let v: toml::Value = toml::from_str("[inner]\nport = 70000").unwrap();
        let e = deserialize::<Outer>("agent", v).unwrap_err();
        assert!(e.message().starts_with("`agent.inner.port`:"), "{e}");
    }
}
