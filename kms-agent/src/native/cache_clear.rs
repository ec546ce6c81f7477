//! `POST /kms/v1/cache/clear` (every store) and `POST /kms/v1/stores/<store>/cache/clear`
//! (one store): empty the caches, or drop one key with `?key=<key>` (the default store's key
//! on the first form). The next read of what was dropped goes to the backend; a load already
//! in flight is not cached (the cache's invalidation), so a clear cannot be undone by a read
//! that started before it. Stores opened for other staging labels are cleared with their
//! store.
//!
//! Token-protected like every other route; `POST` only (a `GET` is refused with 405, so no
//! link or prefetching client clears a cache by accident). Answer:
//! `{"cleared": ["vault"], "uncached": ["mem"], "key": "app/db" | null}`: the stores whose
//! cache was cleared and those that have none.

use std::borrow::Cow;

use http::{Response, StatusCode, Uri};
use kms::{Error, ErrorKind, KeyName};
use percent_encoding::percent_decode_str;
use serde::Serialize;

use super::error_map::{bad_request, response};
use crate::respond::{self, Body};
use crate::snapshot::Snapshot;
use crate::store_slot::StoreSlot;

#[derive(Serialize)]
struct Answer<'a> {
    cleared: Vec<&'a str>,
    uncached: Vec<&'a str>,
    key: Option<&'a str>,
}

/// The store a path names: `Ok(None)` for every store, `Err` for a path that is not one of
/// the two forms.
fn store_of(path: &str) -> Result<Option<Cow<'_, str>>, String> {
    if path == "/kms/v1/cache/clear" {
        return Ok(None);
    }
    let name = path
        .strip_prefix("/kms/v1/stores/")
        .and_then(|r| r.strip_suffix("/cache/clear"))
        .ok_or_else(|| "not a cache-clear path".to_owned())?;
    percent_decode_str(name)
        .decode_utf8()
        .map(Some)
        .map_err(|_| "the store name is not UTF-8 after percent-decoding".to_owned())
}

fn key_param(uri: &Uri) -> Result<Option<String>, String> {
    let mut key = None;
    for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "key" if key.is_none() => key = Some(v.into_owned()),
            "key" => return Err("`key` given twice".to_owned()),
            other => return Err(format!("unknown parameter `{other}`: expected key")),
        }
    }
    Ok(key)
}

/// Answers a cache clear.
pub fn handle(snap: &Snapshot, uri: &Uri) -> Response<Body> {
    let (store, key) = match (store_of(uri.path()), key_param(uri)) {
        (Ok(s), Ok(k)) => (s, k),
        (Err(m), _) | (_, Err(m)) => return bad_request(m),
    };
    let key = match key.as_deref().map(KeyName::new).transpose() {
        Ok(k) => k,
        Err(e) => return response(&e),
    };
    let slots: Vec<&StoreSlot> = match (&store, &key) {
        (Some(name), _) => match snap.store(name) {
            Some(slot) => vec![&**slot],
            None => {
                return response(&Error::new(
                    ErrorKind::NotFound,
                    format!("no store named {name:?}"),
                ));
            }
        },
        // A key names a secret of one store: the default one.
        (None, Some(_)) => match snap.default_slot() {
            Some(slot) => vec![&**slot],
            None => {
                return response(&Error::new(
                    ErrorKind::NotFound,
                    "no default store: name one in `default`, or use /kms/v1/stores/<store>/cache/clear?key=<key>",
                ));
            }
        },
        (None, None) => snap.stores.values().map(|s| &**s).collect(),
    };
    let mut answer = Answer {
        cleared: Vec::new(),
        uncached: Vec::new(),
        key: key.as_ref().map(KeyName::as_str),
    };
    for slot in slots {
        if slot.clear_cache(key.as_ref()) {
            answer.cleared.push(slot.name());
        } else {
            answer.uncached.push(slot.name());
        }
    }
    tracing::info!(
        stores = ?answer.cleared,
        key = answer.key,
        "cache cleared"
    );
    respond::json(StatusCode::OK, &answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_parameters() {
        assert_eq!(store_of("/kms/v1/cache/clear"), Ok(None));
        assert_eq!(
            store_of("/kms/v1/stores/my%20vault/cache/clear"),
            Ok(Some("my vault".into()))
        );
        assert!(store_of("/kms/v1/stores/v/cache").is_err());
        let uri: Uri = "/kms/v1/cache/clear?key=app%2Fdb".parse().unwrap();
        assert_eq!(key_param(&uri), Ok(Some("app/db".to_owned())));
        let uri: Uri = "/kms/v1/cache/clear?key=a&key=b".parse().unwrap();
        assert!(key_param(&uri).is_err());
        let uri: Uri = "/kms/v1/cache/clear?all=true".parse().unwrap();
        assert!(
            key_param(&uri)
                .unwrap_err()
                .contains("unknown parameter `all`")
        );
    }
}
