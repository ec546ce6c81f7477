//! Version ids typed on the command line (`put --cas`, `get --version`), checked before the
//! store is called: a malformed one is a usage error (exit 2) whose message says what the
//! store's ids look like and never repeats what was typed (it may be a secret pasted in the
//! wrong place).

use crate::exit::Failure;

/// The staging labels AWS Secrets Manager's `get --version` accepts besides version ids.
const AWS_STAGES: [&str; 3] = ["AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"];

/// Checks `value` of option `option` as a version id of a store of `backend` (`None`: not
/// known before opening). `cas` allows Vault's `0` ("only if the key does not exist").
///
/// # Errors
///
/// A [`Failure::usage`] (exit 2) that names the option and the form, not the value.
pub fn check(option: &str, value: &str, backend: Option<&str>, cas: bool) -> Result<(), Failure> {
    let bad = |form: &str| Err(Failure::usage(format!("{option}: {form}")));
    if value.is_empty()
        || value.len() > 64
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return bad("a version id is 1 to 64 letters, digits, '-' or '_'");
    }
    match backend {
        Some("vault" | "memory") => {
            let number = value.parse::<u64>().ok();
            if number.is_none_or(|n| n == 0 && !cas) {
                return bad(if cas {
                    "versions of this store are positive integers (0: only if the key does not exist)"
                } else {
                    "versions of this store are positive integers"
                });
            }
        }
        Some("aws") => {
            let stage = !cas && AWS_STAGES.contains(&value);
            let id = (32..=64).contains(&value.len())
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !(stage || id || (cas && value == "0")) {
                return bad(if cas {
                    "AWS version ids are 32 to 64 letters, digits or '-' (0: only if the key does not exist)"
                } else {
                    "AWS version ids are 32 to 64 letters, digits or '-', or AWSCURRENT, AWSPREVIOUS, AWSPENDING"
                });
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_the_form_of_each_store_without_quoting() {
        assert!(check("--cas", "3", Some("vault"), true).is_ok());
        assert!(check("--cas", "0", Some("vault"), true).is_ok());
        assert!(check("--version", "0", Some("vault"), false).is_err());
        assert!(check("--version", "AWSPREVIOUS", Some("aws"), false).is_ok());
        assert!(check("--cas", "AWSPREVIOUS", Some("aws"), true).is_err());
        assert!(check("--cas", &"a1b2".repeat(8), Some("aws"), true).is_ok());
        assert!(check("--version", "anything_1", None, false).is_ok());
        for (value, backend) in [
            ("hunter2", Some("vault")),
            ("s3cr3t!", None),
            ("zz9", Some("aws")),
        ] {
            let err = check("--cas", value, backend, true).unwrap_err();
            assert_eq!(err.exit.code(), 2);
            assert!(!err.to_string().contains(value), "{err}");
        }
    }
}
