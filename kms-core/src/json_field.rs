//! [`json_field`]: one field of a JSON-object secret, as a [`SecretValue`].

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretValue;

/// How many field names an error lists, at most.
const NAMES_SHOWN: usize = 8;

/// Reads `value` as a JSON object and returns its top-level `field`: a JSON string's text, or
/// any other JSON value's own text (`5432`, `true`, `null`, `{"a":1}`).
///
/// Only the chosen field is copied out, straight into the returned zeroizing [`SecretValue`];
/// the other fields are skipped without being decoded. (A string field with JSON escapes is
/// unescaped by serde_json into a buffer that then becomes the `SecretValue`.) When a field
/// appears twice, the last one counts, as in JavaScript and serde_json.
///
/// ```
/// use kms_core::{SecretValue, json_field};
///
/// let secret = SecretValue::from(r#"{"username":"app","password":"s3cr\"et","port":5432}"#);
/// assert_eq!(json_field(&secret, "password")?.expose_str()?, "s3cr\"et");
/// assert_eq!(json_field(&secret, "port")?.expose_str()?, "5432");
/// assert!(json_field(&secret, "host").is_err());
/// # Ok::<(), kms_core::Error>(())
/// ```
///
/// # Errors
///
/// [`ErrorKind::InvalidData`] when `value` is not a JSON object, or has no field `field` (the
/// message lists up to eight field names, never a value).
pub fn json_field(value: &SecretValue, field: &str) -> Result<SecretValue> {
    let fields: BTreeMap<String, &RawValue> = serde_json::from_slice(value.expose_secret())
        .map_err(|e| {
            // serde_json's message names a position and a category, never the input's bytes.
            Error::new(
                ErrorKind::InvalidData,
                format!(
                    "value is not a JSON object (at line {} column {}), so it has no field '{}'",
                    e.line(),
                    e.column(),
                    field.escape_debug()
                ),
            )
        })?;
    let Some(raw) = fields.get(field) else {
        let mut names: Vec<&str> = fields
            .keys()
            .map(String::as_str)
            .take(NAMES_SHOWN)
            .collect();
        if fields.len() > NAMES_SHOWN {
            names.push("…");
        }
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!(
                "JSON object has no field '{}' (fields: {})",
                field.escape_debug(),
                names.join(", ")
            ),
        ));
    };
    let text = raw.get();
    if text.starts_with('"') {
        if let Ok(borrowed) = serde_json::from_str::<&str>(text) {
            return Ok(SecretValue::from(borrowed));
        }
        let owned: String = serde_json::from_str(text).map_err(|_| {
            Error::new(
                ErrorKind::InvalidData,
                format!(
                    "field '{}' is not a valid JSON string",
                    field.escape_debug()
                ),
            )
        })?;
        return Ok(SecretValue::from(owned));
    }
    Ok(SecretValue::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(json: &str, name: &str) -> Result<String> {
        json_field(&SecretValue::from(json), name).map(|v| v.expose_str().unwrap().to_owned())
    }

    #[test]
    fn reads_strings_raw_and_other_values_as_json() {
        let doc = r#"{"username":"app","password":"p\u00e4ss\n\"x\"","port":5432,"tls":true,"opts":{"a":[1,2]},"none":null}"#;
        assert_eq!(field(doc, "username").unwrap(), "app");
        assert_eq!(field(doc, "password").unwrap(), "päss\n\"x\"");
        assert_eq!(field(doc, "port").unwrap(), "5432");
        assert_eq!(field(doc, "tls").unwrap(), "true");
        assert_eq!(field(doc, "opts").unwrap(), r#"{"a":[1,2]}"#);
        assert_eq!(field(doc, "none").unwrap(), "null");
    }

    #[test]
    fn last_duplicate_wins() {
        assert_eq!(field(r#"{"a":"1","a":"2"}"#, "a").unwrap(), "2");
    }

    #[test]
    fn errors_name_fields_never_values() {
        let err = field(r#"{"username":"app","password":"hunter2"}"#, "pass").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert!(err.message().contains("'pass'"), "{err}");
        assert!(
            err.message().contains("username, password")
                || err.message().contains("password, username"),
            "{err}"
        );
        assert!(!err.to_string().contains("hunter2"), "{err}");
        for not_object in ["hunter2", r#""hunter2""#, "[1,2]", "42", "{\"a\":", ""] {
            let err = field(not_object, "a").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidData, "{not_object:?}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn lists_at_most_eight_names() {
        let doc: String = format!(
            "{{{}}}",
            (0..20)
                .map(|i| format!("\"f{i:02}\":{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let err = field(&doc, "zz").unwrap_err();
        assert_eq!(err.message().matches(", ").count(), NAMES_SHOWN, "{err}");
        assert!(err.message().ends_with("…)"), "{err}");
    }
}
