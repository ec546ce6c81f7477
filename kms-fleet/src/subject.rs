//! Subject, stream and bucket names: one place that knows how a store and a key map onto
//! NATS names.
//!
//! Each store has its own stream, `KMS_FLEET_<STORE>`, holding the subjects
//! `<prefix>.<store>.<key token>`, one subject per key (so JetStream keeps each key's changes
//! in order). A stream per store keeps its sequence numbers contiguous for that store, which
//! is what makes a missing sequence visible as a gap.

use kms_core::{Error, KeyName, Result};

/// The default subject prefix.
pub const DEFAULT_PREFIX: &str = "kms.fleet";

/// The JetStream key-value bucket holding the watchers' leases.
pub const LEASE_BUCKET: &str = "KMS_FLEET_LEASES";

/// Whether `token` is a safe NATS subject token and stream-name part: 1 to 64 ASCII letters,
/// digits, `-` or `_`.
fn is_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 64
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks a store id (`setting` names it in the error).
///
/// # Errors
///
/// [`ErrorKind::Configuration`](kms_core::ErrorKind::Configuration) unless it is 1 to 64 ASCII
/// letters, digits, `-` or `_`.
pub fn check_store_id(setting: &str, store: &str) -> Result<()> {
    if is_token(store) {
        Ok(())
    } else {
        Err(Error::configuration(
            setting,
            "a store id is 1 to 64 ASCII letters, digits, '-' or '_'",
        ))
    }
}

/// Checks a subject prefix: dot-separated tokens of ASCII letters, digits, `-` or `_`.
///
/// # Errors
///
/// [`ErrorKind::Configuration`](kms_core::ErrorKind::Configuration) naming `setting`.
pub fn check_prefix(setting: &str, prefix: &str) -> Result<()> {
    if prefix.len() <= 128 && prefix.split('.').all(is_token) {
        Ok(())
    } else {
        Err(Error::configuration(
            setting,
            "a subject prefix is dot-separated tokens of ASCII letters, digits, '-' or '_'",
        ))
    }
}

/// The stream of `store`.
pub fn stream_name(store: &str) -> String {
    format!("KMS_FLEET_{store}")
}

/// Every subject of `store`: `<prefix>.<store>.>`.
pub fn store_subjects(prefix: &str, store: &str) -> String {
    format!("{prefix}.{store}.>")
}

/// The subject of one key: the key's bytes in lowercase hex, so any key name is one token
/// (names may hold `.`, `/`, `*` or `>`, which NATS reads as separators and wildcards).
pub fn key_subject(prefix: &str, store: &str, key: &KeyName) -> String {
    use std::fmt::Write as _;
    let mut subject =
        String::with_capacity(prefix.len() + store.len() + 2 + key.as_str().len() * 2);
    subject.push_str(prefix);
    subject.push('.');
    subject.push_str(store);
    subject.push('.');
    for b in key.as_str().bytes() {
        let _ = write!(subject, "{b:02x}");
    }
    subject
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let key = KeyName::new("a.b/=").unwrap();
        assert_eq!(
            key_subject("kms.fleet", "app", &key),
            "kms.fleet.app.612e622f3d"
        );
        assert_eq!(store_subjects("kms.fleet", "app"), "kms.fleet.app.>");
        assert!(check_store_id("s", "app-1_x").is_ok());
        assert!(check_store_id("s", "a.b").is_err());
        assert!(check_prefix("p", "kms.fleet").is_ok());
        assert!(check_prefix("p", "kms..fleet").is_err());
        assert!(check_prefix("p", "kms.>").is_err());
    }
}
