//! Settings are checked when they are built, and a bad one is an
//! [`ErrorKind::Configuration`] error naming it: [`config_error`] makes that error, and
//! [`config_path`] checks path-like settings (mount, prefix, auth mount, Transit key,
//! namespace) like key names, so `mount("../sys")` can never turn into `/v1/sys/...`.

use kms_core::{Error, ErrorKind, KeyName, Result};

use crate::BACKEND;

/// An [`ErrorKind::Configuration`] error from this backend; `what` names the setting and what
/// is wrong with it.
pub(crate) fn config_error(what: String) -> Error {
    Error::new(ErrorKind::Configuration, what).with_backend(BACKEND)
}

/// `value` without surrounding `/`, checked with [`KeyName`]'s rules (safe characters, no
/// empty, `.` or `..` segment); an [`ErrorKind::Configuration`] error naming `setting`
/// otherwise.
pub(crate) fn config_path(setting: &str, value: &str) -> Result<String> {
    let trimmed = value.trim_matches('/');
    KeyName::new(trimmed)
        .map(|k| k.as_str().to_owned())
        .map_err(|e| {
            config_error(format!(
                "{setting} {value:?} is not a valid path: {}",
                e.message()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_empty_paths_are_configuration_errors() {
        assert_eq!(config_path("mount", "/secret/").unwrap(), "secret");
        assert_eq!(config_path("mount", "team/kv").unwrap(), "team/kv");
        for bad in [
            "../sys", "", "/", "a/../b", "a//b", "sys/..", ".", "a b", "a?b", "a%2e",
        ] {
            let err = config_path("mount", bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Configuration, "{bad:?}");
            assert!(err.to_string().contains("mount"), "{err}");
        }
    }
}
