//! `GET /kms/v1/secrets/<key>` (the default store) and
//! `GET /kms/v1/stores/<store>/secrets/<key>`: what the AWS API cannot say.
//!
//! Query parameters (all optional):
//!
//! | Parameter | Meaning |
//! | --- | --- |
//! | `version=<id>` | that version (stores with versions) |
//! | `field=<name>` | one top-level field of a JSON object secret: a string field's text, another value's JSON |
//! | `refresh=true` | reload through the cache first |
//! | `format=raw` | the bare value as `application/octet-stream` (default `json`) |
//!
//! JSON answer: `{"store", "name", "version", "created_at", "field"?, "value" | "value_base64"}`
//! (`value` for UTF-8 text, else `value_base64`). The raw answer carries the version in a
//! `Kms-Version` header.

use std::borrow::Cow;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, Uri};
use kms::{Error, KeyName, KeyStore, SecretValue, StoredSecret};
use percent_encoding::percent_decode_str;
use serde::Serialize;
use zeroize::Zeroizing;

use super::error_map::{bad_request, response};
use crate::respond::{self, Body};
use crate::snapshot::Snapshot;

#[derive(Debug, Default, PartialEq, Eq)]
struct Params {
    version: Option<String>,
    field: Option<String>,
    refresh: bool,
    raw: bool,
}

fn params(uri: &Uri) -> Result<Params, String> {
    let mut p = Params::default();
    for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "version" => p.version = Some(v.into_owned()),
            "field" => p.field = Some(v.into_owned()),
            "refresh" => {
                p.refresh = match v.as_ref() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(format!("invalid refresh {v:?}: expected true or false")),
                }
            }
            "format" => {
                p.raw = match v.as_ref() {
                    "raw" => true,
                    "json" => false,
                    _ => return Err(format!("invalid format {v:?}: expected json or raw")),
                }
            }
            other => {
                return Err(format!(
                    "unknown parameter `{other}`: expected version, field, refresh or format"
                ));
            }
        }
    }
    Ok(p)
}

fn decode(part: &str) -> Result<Cow<'_, str>, String> {
    percent_decode_str(part)
        .decode_utf8()
        .map_err(|_| "the path is not UTF-8 after percent-decoding".to_owned())
}

/// The store (`None`: the default) and key a path names.
fn target(path: &str) -> Option<(Option<&str>, &str)> {
    let rest = path.strip_prefix("/kms/v1/")?;
    if let Some(key) = rest.strip_prefix("secrets/") {
        return Some((None, key));
    }
    let (store, tail) = rest.strip_prefix("stores/")?.split_once('/')?;
    Some((Some(store), tail.strip_prefix("secrets/")?))
}

#[derive(Serialize)]
struct Answer<'a> {
    store: &'a str,
    name: &'a str,
    version: Option<&'a str>,
    created_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_base64: Option<&'a str>,
}

/// Answers a secret request.
pub async fn handle(snap: &Snapshot, uri: &Uri) -> Response<Body> {
    let Some((store, key)) = target(uri.path()) else {
        return respond::text(StatusCode::NOT_FOUND, "Not found");
    };
    let p = match params(uri) {
        Ok(p) => p,
        Err(m) => return bad_request(m),
    };
    let (store, key) = match (store.map(decode).transpose(), decode(key)) {
        (Ok(s), Ok(k)) => (s, k),
        (Err(m), _) | (_, Err(m)) => return bad_request(m),
    };
    let slot = match &store {
        Some(name) => snap.store(name),
        None => snap.default_slot(),
    };
    let Some(slot) = slot else {
        return response(&Error::new(
            kms::ErrorKind::NotFound,
            match &store {
                Some(name) => format!("no store named {name:?}"),
                None => "no default store: name one in `default`, or use /kms/v1/stores/<store>/secrets/<key>".to_owned(),
            },
        ));
    };
    let key = match KeyName::new(key.as_ref()) {
        Ok(k) => k,
        Err(e) => return response(&e),
    };
    let read = match (&p.version, slot.cache()) {
        (Some(v), _) => slot.store().get_version(&key, v).await,
        (None, Some(cache)) if p.refresh => cache.refresh(&key).await,
        (None, _) => slot.store().get(&key).await,
    };
    let StoredSecret { value, meta } = match read {
        Ok(s) => s,
        Err(e) => return response(&e),
    };
    let value: SecretValue = match &p.field {
        Some(field) => match kms::json_field(&value, field) {
            Ok(v) => v,
            Err(e) => {
                return response(&Error::new(
                    e.kind(),
                    format!("secret '{key}': {}", e.message()),
                ));
            }
        },
        None => value,
    };
    let version = meta.version.as_deref();
    if p.raw {
        let mut r = respond::octets(
            StatusCode::OK,
            Bytes::copy_from_slice(value.expose_secret()),
        );
        if let Some(v) = version.and_then(|v| HeaderValue::from_str(v).ok()) {
            r.headers_mut().insert("kms-version", v);
        }
        return r;
    }
    let b64;
    let (text, binary) = match std::str::from_utf8(value.expose_secret()) {
        Ok(t) => (Some(t), None),
        Err(_) => {
            b64 = Zeroizing::new(
                base64::engine::general_purpose::STANDARD.encode(value.expose_secret()),
            );
            (None, Some(b64.as_str()))
        }
    };
    respond::json(
        StatusCode::OK,
        &Answer {
            store: slot.name(),
            name: key.as_str(),
            version,
            created_at: meta.created_at.and_then(crate::rfc3339::format),
            field: p.field.as_deref(),
            value: text,
            value_base64: binary,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(target("/kms/v1/secrets/app/db"), Some((None, "app/db")));
        assert_eq!(
            target("/kms/v1/stores/v/secrets/app/db"),
            Some((Some("v"), "app/db"))
        );
        assert_eq!(target("/kms/v1/stores/v/health"), None);
    }

    #[test]
    fn parameters() {
        let uri: Uri = "/x?version=3&field=password&refresh=true&format=raw"
            .parse()
            .unwrap();
        assert_eq!(
            params(&uri).unwrap(),
            Params {
                version: Some("3".into()),
                field: Some("password".into()),
                refresh: true,
                raw: true
            }
        );
        let uri: Uri = "/x?verison=3".parse().unwrap();
        assert!(
            params(&uri)
                .unwrap_err()
                .contains("unknown parameter `verison`")
        );
        let uri: Uri = "/x?format=xml".parse().unwrap();
        assert!(params(&uri).is_err());
    }
}
