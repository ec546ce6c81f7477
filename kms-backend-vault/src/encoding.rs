//! How secret bytes map onto a Vault KV JSON map.
//!
//! - Valid UTF-8 is stored as `{"value": "<text>"}`, readable with `bao kv get`.
//! - Anything else as `{"value": "<standard base64>", "encoding": "base64"}`.
//!
//! Reading accepts exactly those shapes. A secret written by another tool with another shape
//! (no `value` string, extra fields, an unknown `encoding`) is [`ErrorKind::InvalidData`]
//! naming the problem, never the data.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kms_core::{Error, ErrorKind, Result, SecretValue};
use serde_json::{Map, Value, json};

use crate::error_map::BACKEND;

/// The JSON map for `value`.
pub(crate) fn encode(value: &SecretValue) -> Value {
    match std::str::from_utf8(value.expose_secret()) {
        Ok(text) => json!({ "value": text }),
        Err(_) => json!({ "value": STANDARD.encode(value.expose_secret()), "encoding": "base64" }),
    }
}

/// The bytes a KV JSON map holds.
pub(crate) fn decode(data: &Value, what: &str) -> Result<SecretValue> {
    let bad = |why: &str| {
        Error::new(ErrorKind::InvalidData, format!("{what}: {why}")).with_backend(BACKEND)
    };
    let map: &Map<String, Value> = data
        .as_object()
        .ok_or_else(|| bad("secret data is not a JSON object"))?;
    let value = map
        .get("value")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("secret has no string field \"value\" (not written by kms)"))?;
    let allowed = |k: &str| k == "value" || k == "encoding";
    if let Some(extra) = map.keys().find(|k| !allowed(k)) {
        return Err(bad(&format!(
            "secret has an unexpected field {:?} (not written by kms)",
            truncate(extra)
        )));
    }
    match map.get("encoding") {
        None => Ok(SecretValue::copy_from_slice(value.as_bytes())),
        Some(Value::String(e)) if e == "base64" => STANDARD
            .decode(value)
            .map(SecretValue::new)
            .map_err(|_| bad("\"value\" is not valid base64")),
        Some(_) => Err(bad("unknown \"encoding\" (expected \"base64\")")),
    }
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
    fn foreign_shapes_are_invalid_data_without_values() {
        for data in [
            json!({"password": "hunter2"}),
            json!({"value": "x", "password": "hunter2"}),
            json!({"value": 5}),
            json!({"value": "!!", "encoding": "base64"}),
            json!({"value": "x", "encoding": "rot13"}),
            json!("hunter2"),
        ] {
            let err = decode(&data, "get k").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidData, "{data}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }
}
