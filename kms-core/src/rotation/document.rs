//! Multi-field secrets: whether a value is a JSON object, and replacing one field of it while
//! keeping every other byte.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretValue;

/// The top-level field names of `value` if it is a JSON object, `None` otherwise. Values are
/// not decoded or copied.
pub(crate) fn object_fields(value: &SecretValue) -> Option<Vec<String>> {
    let bytes = value.expose_secret();
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    serde_json::from_slice::<BTreeMap<String, &RawValue>>(bytes)
        .ok()
        .map(|fields| fields.into_keys().collect())
}

/// `document` with its top-level `field` set to the JSON string `text`; every other byte
/// (the other fields, their order, whitespace) is kept as it was. When the field appears more
/// than once, the last one is replaced (the one readers see: serde_json, JavaScript,
/// [`json_field`](crate::json_field)).
///
/// The result is built in one buffer allocated at its final size, so no partial copy of the
/// secret is left behind by a growing buffer.
///
/// # Errors
///
/// [`ErrorKind::InvalidData`] if `document` is not a JSON object or has no such field (the
/// message names fields, never values); [`ErrorKind::InvalidInput`] if `text` is not UTF-8.
pub(crate) fn replace_field(
    document: &SecretValue,
    field: &str,
    text: &SecretValue,
) -> Result<SecretValue> {
    let text = text.expose_str().map_err(|_| {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the new value of field '{}' is not UTF-8 text; a JSON field holds text (use a \
                 text encoding)",
                field.escape_debug()
            ),
        )
    })?;
    let bytes = document.expose_secret();
    let fields: BTreeMap<String, &RawValue> = serde_json::from_slice(bytes).map_err(|e| {
        Error::new(
            ErrorKind::InvalidData,
            format!(
                "the value is not a JSON object (at line {} column {}), so it has no field '{}'",
                e.line(),
                e.column(),
                field.escape_debug()
            ),
        )
    })?;
    let Some(raw) = fields.get(field) else {
        let names: Vec<&str> = fields.keys().map(String::as_str).take(8).collect();
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!(
                "the JSON object has no field '{}' (fields: {}); rotation replaces a field, it \
                 does not add one",
                field.escape_debug(),
                names.join(", ")
            ),
        ));
    };
    // The raw value borrows from `bytes`: its position there is where the old value sits.
    let old = raw.get().as_bytes();
    let start = old.as_ptr() as usize - bytes.as_ptr() as usize;
    let end = start + old.len();
    let quoted = serde_json::to_string(text)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("field value: {e}")))?;
    let mut out = Vec::with_capacity(bytes.len() - old.len() + quoted.len());
    out.extend_from_slice(&bytes[..start]);
    out.extend_from_slice(quoted.as_bytes());
    out.extend_from_slice(&bytes[end..]);
    Ok(SecretValue::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replaced(doc: &str, field: &str, text: &str) -> Result<String> {
        replace_field(&doc.into(), field, &text.into()).map(|v| v.expose_str().unwrap().to_owned())
    }

    #[test]
    fn replaces_one_field_and_keeps_every_other_byte() {
        let doc = "{ \"username\": \"app\",\n  \"password\": \"old\", \"port\": 5432 }";
        assert_eq!(
            replaced(doc, "password", "n\"ew").unwrap(),
            "{ \"username\": \"app\",\n  \"password\": \"n\\\"ew\", \"port\": 5432 }"
        );
        // A non-string field becomes a string.
        assert_eq!(
            replaced(r#"{"a":1,"b":{"c":2}}"#, "b", "x").unwrap(),
            r#"{"a":1,"b":"x"}"#
        );
        // The last of duplicate fields is the one readers see, and the one replaced.
        assert_eq!(
            replaced(r#"{"a":"1","a":"2"}"#, "a", "3").unwrap(),
            r#"{"a":"1","a":"3"}"#
        );
    }

    #[test]
    fn refuses_missing_fields_and_non_objects_without_values() {
        let err = replaced(r#"{"username":"app","password":"hunter2"}"#, "pass", "x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert!(err.message().contains("password, username"), "{err}");
        assert!(!err.to_string().contains("hunter2"));
        let err = replaced("hunter2", "a", "x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert!(!err.to_string().contains("hunter2"));
        let err = replace_field(&r#"{"a":"1"}"#.into(), "a", &vec![0xff].into()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn recognises_objects() {
        assert_eq!(
            object_fields(&r#" {"u":"a","p":"b"}"#.into()),
            Some(vec!["p".to_owned(), "u".to_owned()])
        );
        for not in ["hunter2", "[1]", "\"{}\"", "{broken", ""] {
            assert_eq!(object_fields(&not.into()), None, "{not}");
        }
    }
}
