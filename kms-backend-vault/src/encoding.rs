//! How secret bytes map onto a Vault KV JSON map, and back.
//!
//! Writing (no field selector):
//! - valid UTF-8 is stored as `{"value": "<text>"}`, readable with `bao kv get`;
//! - anything else as `{"value": "<standard base64>", "encoding": "base64"}`.
//!
//! Reading (no field selector):
//! - those two shapes give back the bytes written;
//! - any other JSON object (a secret written by `bao kv put secret/app/db username=app
//!   password=…`, or by any other tool) is returned whole, as the compact JSON text of the
//!   data object (`{"password":"…","username":"app"}`, keys sorted), so it can be parsed, or
//!   read one field at a time with a field selector.
//!
//! With a field selector (`VaultStoreBuilder::field`), reads return that field: a string as
//! its text, any other JSON value as its JSON text; writes set that field and keep the others.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kms_core::{Error, ErrorKind, Result, SecretValue};
use serde_json::{Map, Value, json};

use crate::BACKEND;

/// The JSON map for `value`.
pub(crate) fn encode(value: &SecretValue) -> Value {
    match std::str::from_utf8(value.expose_secret()) {
        Ok(text) => json!({ "value": text }),
        Err(_) => json!({ "value": STANDARD.encode(value.expose_secret()), "encoding": "base64" }),
    }
}

fn bad(what: &str, why: &str) -> Error {
    Error::new(ErrorKind::InvalidData, format!("{what}: {why}")).with_backend(BACKEND)
}

/// The data object of a secret, or `InvalidData` if it is not a JSON object.
pub(crate) fn object<'a>(data: &'a Value, what: &str) -> Result<&'a Map<String, Value>> {
    data.as_object()
        .ok_or_else(|| bad(what, "secret data is not a JSON object"))
}

/// The bytes a KV JSON map holds: the value kms wrote, or the whole object as JSON text.
pub(crate) fn decode(data: &Value, what: &str) -> Result<SecretValue> {
    let map = object(data, what)?;
    let kms_shaped = matches!(map.get("value"), Some(Value::String(_)))
        && map.keys().all(|k| k == "value" || k == "encoding")
        && matches!(map.get("encoding"), None | Some(Value::String(_)));
    if !kms_shaped {
        return whole(map, what);
    }
    let value = map.get("value").and_then(Value::as_str).unwrap_or_default();
    match map.get("encoding").and_then(Value::as_str) {
        None => Ok(SecretValue::copy_from_slice(value.as_bytes())),
        Some("base64") => STANDARD
            .decode(value)
            .map(SecretValue::new)
            .map_err(|_| bad(what, "\"value\" is not valid base64")),
        // Another tool's "encoding" field: not kms's shape, so the whole object.
        Some(_) => whole(map, what),
    }
}

/// The whole data object as compact JSON bytes.
fn whole(map: &Map<String, Value>, what: &str) -> Result<SecretValue> {
    serde_json::to_vec(map)
        .map(SecretValue::new)
        .map_err(|_| bad(what, "cannot serialise the secret's data"))
}

/// One field of a KV JSON map: a string as its text, another JSON value (`null` too) as its
/// JSON text, as `kms_core::json_field` reads it. A missing field is `InvalidData` naming the
/// field, never the data.
pub(crate) fn field(data: &Value, name: &str, what: &str) -> Result<SecretValue> {
    match object(data, what)?.get(name) {
        Some(Value::String(s)) => Ok(SecretValue::copy_from_slice(s.as_bytes())),
        None => Err(bad(
            what,
            &format!("the secret has no field {:?}", truncate(name)),
        )),
        Some(other) => serde_json::to_vec(other)
            .map(SecretValue::new)
            .map_err(|_| bad(what, "cannot serialise the field")),
    }
}

/// `current` with `name` set to `value` (which must be UTF-8 text: fields hold strings).
pub(crate) fn with_field(
    current: Option<Map<String, Value>>,
    name: &str,
    value: &SecretValue,
) -> Result<Value> {
    let text = value.expose_str().map_err(|_| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("field {name:?}: a field holds text; the value is not UTF-8"),
        )
        .with_backend(BACKEND)
    })?;
    let mut map = current.unwrap_or_default();
    map.insert(name.to_owned(), Value::String(text.to_owned()));
    Ok(Value::Object(map))
}

fn truncate(s: &str) -> &str {
    let mut end = s.len().min(40);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_binary_round_trip() {
        for bytes in [
            b"hello".to_vec(),
            vec![0, 159, 146, 150, 255],
            Vec::new(),
            "héllo".as_bytes().to_vec(),
            br#"{"looks":"like json"}"#.to_vec(),
        ] {
            let v = SecretValue::new(bytes.clone());
            let json = encode(&v);
            assert_eq!(decode(&json, "t").unwrap().expose_secret(), &bytes[..]);
        }
        assert_eq!(encode(&"abc".into()), json!({"value": "abc"}));
        assert_eq!(
            encode(&SecretValue::new(vec![0xff])),
            json!({"value": "/w==", "encoding": "base64"})
        );
    }

    #[test]
    fn foreign_shapes_read_as_the_whole_json_object() {
        for data in [
            json!({"password": "hunter2", "username": "app"}),
            json!({"value": "x", "password": "hunter2"}),
            json!({"value": 5}),
            json!({"value": "x", "encoding": "rot13"}),
            json!({"host": "db", "port": 5432}),
            json!({}),
        ] {
            let got = decode(&data, "get k").unwrap();
            let back: Value = serde_json::from_slice(got.expose_secret()).unwrap();
            assert_eq!(back, data);
        }
        assert_eq!(
            decode(&json!({"username": "app", "password": "p"}), "t")
                .unwrap()
                .expose_str()
                .unwrap(),
            r#"{"password":"p","username":"app"}"#
        );
    }

    #[test]
    fn broken_kms_shapes_and_non_objects_are_invalid_data_without_values() {
        for data in [
            json!({"value": "!!hunter2", "encoding": "base64"}),
            json!("hunter2"),
        ] {
            let err = decode(&data, "get k").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidData, "{data}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn fields_are_read_and_written_one_at_a_time() {
        let data = json!({"username": "app", "password": "hunter2", "port": 5432, "tls": true});
        let f =
            |name: &str| field(&data, name, "get k").map(|v| v.expose_str().unwrap().to_owned());
        assert_eq!(f("password").unwrap(), "hunter2");
        assert_eq!(f("port").unwrap(), "5432");
        assert_eq!(f("tls").unwrap(), "true");
        let err = f("missing").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert!(err.to_string().contains("missing") && !err.to_string().contains("hunter2"));

        let map = data.as_object().cloned();
        let merged = with_field(map, "password", &"new".into()).unwrap();
        assert_eq!(merged["password"], "new");
        assert_eq!(merged["username"], "app");
        assert_eq!(
            with_field(None, "p", &"v".into()).unwrap(),
            json!({"p": "v"})
        );
        let err = with_field(None, "p", &SecretValue::new(vec![0xff])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}
