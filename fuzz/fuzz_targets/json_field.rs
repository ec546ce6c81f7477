//! `kms_core::json_field`: one field of a JSON secret. Input: the field name, a newline, the
//! JSON document (placeholders planted). A field that is a string comes back as its text,
//! any other value as its compact JSON; an error never shows the document's contents.
#![no_main]

use kms_core::{SecretValue, json_field};
use kms_fuzz::{SECRET, assert_clean, assert_error_clean, plant};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (field, doc) = text.split_once('\n').unwrap_or((text, ""));
    let doc = plant(doc);
    let value = SecretValue::from(doc.as_str());
    let got = json_field(&value, field);
    let parsed = serde_json::from_str::<Value>(&doc).ok();
    match (
        &got,
        parsed
            .as_ref()
            .and_then(|v| v.as_object())
            .and_then(|m| m.get(field)),
    ) {
        (Ok(v), Some(Value::String(s))) => assert_eq!(v.expose_secret(), s.as_bytes()),
        (Ok(v), Some(other)) => {
            let back: Value = serde_json::from_slice(v.expose_secret()).expect("a field as JSON");
            assert_eq!(&back, other);
        }
        (Ok(_), None) if parsed.is_some() => {
            panic!("a field {field:?} returned that the document does not hold")
        }
        // A document only the raw reader takes (a number out of f64's range).
        (Ok(_), None) => {}
        (Err(_), Some(_)) => {
            // Only a document serde_json reads another way (duplicate keys) may disagree.
        }
        (Err(_), None) => {}
    }
    if let Ok(v) = &got {
        assert_clean("Debug of a field", &format!("{v:?}"), SECRET);
    }
    if let Err(e) = &got {
        // The field name is the caller's and may be shown; the document never.
        if !field.contains(SECRET) && !parsed.as_ref().is_some_and(key_holds_secret) {
            assert_error_clean(e, &[SECRET]);
        }
    }
});

/// Whether a key of the document holds the canary (keys are listed in errors: not secret).
fn key_holds_secret(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| k.contains(SECRET) || key_holds_secret(v)),
        Value::Array(a) => a.iter().any(key_holds_secret),
        _ => false,
    }
}
