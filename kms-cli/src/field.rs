//! One field of a JSON-object secret held as a whole value (`get`/`put`/`rotate --field` on
//! stores without a field selector of their own: AWS Secrets Manager's JSON `SecretString`,
//! the keyrings, memory). A leaf: it knows `KeyStore`, not the commands.
//!
//! Reading is [`kms_core::json_field`]. Writing is a read-modify-write: the current value is
//! parsed as a JSON object, the field is set (as a JSON string), the other fields are copied
//! through as their own JSON text, and the object is written back with
//! [`KeyStore::store_if_version`] against the version read, so a write by someone else in
//! between is a conflict instead of a lost update. Stores without check-and-set (AWS, the
//! keyrings) get a plain `store`: there the read and the write are two steps.

use std::collections::BTreeMap;

use kms_core::{
    Error, ErrorKind, KeyName, KeyStore, KeyStoreExt, SecretMeta, SecretValue, json_field,
};
use serde_json::value::RawValue;
use zeroize::Zeroizing;

/// `field` of `value`, the value of `key`: a string field's text, another field's JSON text.
///
/// # Errors
///
/// [`ErrorKind::InvalidData`] when the value is not a JSON object or has no such field (the
/// message names the key and the field, never a value).
pub fn read(key: &KeyName, value: &SecretValue, field: &str) -> Result<SecretValue, Error> {
    json_field(value, field)
        .map_err(|e| Error::new(e.kind(), format!("secret '{key}': {}", e.message())))
}

/// The JSON object `whole` (or `{}` when `None`) with `field` set to the text `value`, every
/// other field kept as it was. The result is built in one zeroizing buffer sized up front,
/// so no partial copy of a secret is left in freed memory.
///
/// # Errors
///
/// [`ErrorKind::InvalidInput`] when `value` is not UTF-8 text; [`ErrorKind::InvalidData`]
/// when `whole` is not a JSON object (the message gives a position, never the bytes).
pub fn with_field(
    whole: Option<&SecretValue>,
    field: &str,
    value: &SecretValue,
) -> Result<SecretValue, Error> {
    let text = value.expose_str().map_err(|_| {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "a field holds text and the value for field '{}' is not UTF-8",
                field.escape_debug()
            ),
        )
    })?;
    let empty = SecretValue::from("{}");
    let whole = whole.unwrap_or(&empty);
    let fields: BTreeMap<&str, &RawValue> = serde_json::from_slice(whole.expose_secret())
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidData,
                format!(
                    "the value is not a JSON object (at line {} column {}), so field '{}' cannot be set in it",
                    e.line(),
                    e.column(),
                    field.escape_debug()
                ),
            )
        })?;
    // JSON escapes a byte into at most 6 (`\u00XX`): this never grows.
    let capacity = whole.len() + 6 * (field.len() + text.len()) + 8;
    let mut out = Zeroizing::new(Vec::with_capacity(capacity));
    out.push(b'{');
    let mut first = true;
    let mut separator = |out: &mut Vec<u8>| {
        if !first {
            out.push(b',');
        }
        first = false;
    };
    let json_err = |_| Error::new(ErrorKind::InvalidData, "cannot write the JSON object");
    for (name, raw) in &fields {
        if *name == field {
            continue;
        }
        separator(&mut out);
        serde_json::to_writer(&mut *out, name).map_err(json_err)?;
        out.push(b':');
        out.extend_from_slice(raw.get().as_bytes());
    }
    separator(&mut out);
    serde_json::to_writer(&mut *out, field).map_err(json_err)?;
    out.push(b':');
    serde_json::to_writer(&mut *out, text).map_err(json_err)?;
    out.push(b'}');
    debug_assert!(out.len() <= capacity);
    Ok(SecretValue::new(std::mem::take(&mut *out)))
}

/// Which version a field write must find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect<'a> {
    /// The version read just before (the field write's own guard).
    Read,
    /// The caller's `--cas VERSION` (`None`: the key must not exist).
    Version(Option<&'a str>),
}

/// Sets `field` of `key` to `value` in a store holding whole values, keeping the other fields
/// (see the module docs); `must_exist` refuses to create the key or the field (`rotate`).
/// Returns the written version's metadata and the current value's metadata before, if any.
///
/// # Errors
///
/// [`ErrorKind::Conflict`] when the key changed between the read and the write, or is not at
/// the `--cas` version (nothing written); [`ErrorKind::NotFound`] when `must_exist` and the
/// key does not exist, and what [`read`] returns when it has no such field; what
/// [`with_field`] and the store return.
pub async fn write(
    store: &dyn KeyStore,
    key: &KeyName,
    field: &str,
    value: &SecretValue,
    expect: Expect<'_>,
    must_exist: bool,
) -> Result<(SecretMeta, Option<SecretMeta>), Error> {
    let current = store.get_opt(key).await?;
    if must_exist {
        let Some(c) = &current else {
            return Err(Error::not_found(key));
        };
        read(key, &c.value, field)?;
    }
    let new = with_field(current.as_ref().map(|c| &c.value), field, value)?;
    let before = current.as_ref().map(|c| c.meta.clone());
    // `None`: no key; `Some(None)`: a key without a version id.
    let read_version = current.as_ref().map(|c| c.meta.version.clone());
    drop(current);
    let meta = match expect {
        Expect::Version(v) => store.store_if_version(key, new, v).await?,
        // A value without a version id cannot be guarded: write it.
        Expect::Read if read_version == Some(None) => store.store(key, new).await?,
        Expect::Read => {
            let guard = read_version.flatten();
            let guard = guard.as_deref();
            match store.store_if_version(key, new.clone(), guard).await {
                Err(e) if e.kind() == ErrorKind::Unsupported => store.store(key, new).await?,
                Err(e) if e.kind() == ErrorKind::Conflict => {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "{key} changed while its field '{}' was being set; nothing was written; run the command again",
                            field.escape_debug()
                        ),
                    ));
                }
                other => other?,
            }
        }
    };
    Ok((meta, before))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kms_core::MemoryStore;

    fn set(whole: Option<&str>, field: &str, value: &str) -> Result<String, Error> {
        let whole = whole.map(SecretValue::from);
        with_field(whole.as_ref(), field, &SecretValue::from(value))
            .map(|v| v.expose_str().unwrap().to_owned())
    }

    #[test]
    fn sets_one_field_and_keeps_the_others_as_they_were() {
        assert_eq!(
            set(
                Some(r#"{"username":"app","password":"old","port":5432,"o":{"a":[1]}}"#),
                "password",
                "n\"ew"
            )
            .unwrap(),
            r#"{"o":{"a":[1]},"port":5432,"username":"app","password":"n\"ew"}"#
        );
        assert_eq!(set(None, "password", "x").unwrap(), r#"{"password":"x"}"#);
        assert_eq!(set(Some("{}"), "a", "ü\n").unwrap(), r#"{"a":"ü\n"}"#);
    }

    #[test]
    fn refuses_non_objects_and_binary_values_without_echoing_them() {
        for whole in ["hunter2", "[1]", "\"hunter2\"", "{\"a\":"] {
            let err = set(Some(whole), "a", "v").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidData, "{whole}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        let err = with_field(None, "a", &SecretValue::new(vec![0xff, 0xfe])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn writes_with_check_and_set_against_the_version_read() {
        let store = MemoryStore::new();
        let key = KeyName::new("db").unwrap();
        store
            .put("db", r#"{"username":"app","password":"old"}"#)
            .await
            .unwrap();
        let (meta, before) = write(
            &store,
            &key,
            "password",
            &SecretValue::from("new"),
            Expect::Read,
            true,
        )
        .await
        .unwrap();
        assert_eq!(meta.version.as_deref(), Some("2"));
        assert_eq!(before.unwrap().version.as_deref(), Some("1"));
        let now = store.get_value("db").await.unwrap();
        assert_eq!(
            now.expose_str().unwrap(),
            r#"{"username":"app","password":"new"}"#
        );
        // A --cas that is not the current version: nothing written.
        let err = write(
            &store,
            &key,
            "password",
            &SecretValue::from("x"),
            Expect::Version(Some("1")),
            false,
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);
        // rotate: the field must exist.
        let err = write(
            &store,
            &key,
            "nope",
            &SecretValue::from("x"),
            Expect::Read,
            true,
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert!(err.message().contains("'nope'"), "{err}");
        let missing = KeyName::new("missing").unwrap();
        let err = write(
            &store,
            &missing,
            "f",
            &SecretValue::from("x"),
            Expect::Read,
            true,
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        // A new key is created as {"field": value}, only if still absent.
        let new = KeyName::new("new").unwrap();
        write(
            &store,
            &new,
            "f",
            &SecretValue::from("v"),
            Expect::Read,
            false,
        )
        .await
        .unwrap();
        assert_eq!(
            store.get_value("new").await.unwrap().expose_str().unwrap(),
            r#"{"f":"v"}"#
        );
    }
}
