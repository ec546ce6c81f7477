//! `GET /kms/v1/stores`: the configured stores (name, backend, stack, what they can do) and
//! which one is the default.

use http::{Response, StatusCode};
use kms::KeyStore;
use serde::Serialize;

use crate::respond::{self, Body};
use crate::snapshot::Snapshot;

#[derive(Serialize)]
struct Store<'a> {
    name: &'a str,
    backend: &'static str,
    stack: String,
    default: bool,
    versions: bool,
    list: bool,
    cached: bool,
}

#[derive(Serialize)]
struct Stores<'a> {
    generation: u64,
    default: Option<&'a str>,
    stores: Vec<Store<'a>>,
}

/// Answers the store listing.
pub fn handle(snap: &Snapshot) -> Response<Body> {
    let stores = snap
        .stores
        .iter()
        .map(|(name, slot)| {
            let caps = slot.store().capabilities();
            Store {
                name,
                backend: slot.store().backend(),
                stack: slot.store().to_string(),
                default: snap.default_store.as_deref() == Some(name.as_str()),
                versions: caps.versions,
                list: caps.list,
                cached: slot.cache().is_some(),
            }
        })
        .collect();
    respond::json(
        StatusCode::OK,
        &Stores {
            generation: snap.generation,
            default: snap.default_store.as_deref(),
            stores,
        },
    )
}
