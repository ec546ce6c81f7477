//! The agent's own API, under `/kms/v1/`, for what the AWS API cannot say: one field of a
//! JSON secret, a given version, the bare value, the stores and their health. JSON; errors
//! are `{"error": {"kind", "message"}}` with a status by kind ([`error_map`]).
//!
//! | Route | Answer |
//! | --- | --- |
//! | `GET /kms/v1/stores` | the stores |
//! | `GET /kms/v1/secrets/<key>` | a secret of the default store ([`secret`]) |
//! | `GET /kms/v1/stores/<store>/secrets/<key>` | a secret of `<store>` |
//! | `GET /kms/v1/health` | the readiness report (always 200; `ready` says) |
//! | `GET /kms/v1/stores/<store>/health` | one store's health (200 `ok`/`stale`, 503 `down`) |
//! | `POST /kms/v1/cache/clear[?key=<key>]` | empty every store's cache, or drop one key ([`cache_clear`]) |
//! | `POST /kms/v1/stores/<store>/cache/clear[?key=<key>]` | the same for one store |
//! | `POST /kms/v1/reload` | re-read the configuration, as SIGHUP does ([`reload`]) |

pub mod cache_clear;
pub mod error_map;
pub mod reload;
pub mod secret;
mod stores;

use http::{Response, StatusCode, Uri};

use crate::health::{self, StoreStatus};
use crate::live::Live;
use crate::respond::{self, Body};
use crate::route::Route;
use crate::snapshot::Snapshot;

/// Answers a native request.
pub async fn handle(live: &Live, snap: &Snapshot, route: Route, uri: &Uri) -> Response<Body> {
    match route {
        Route::KmsStores => stores::handle(snap),
        Route::KmsSecret => secret::handle(snap, uri).await,
        Route::KmsCacheClear => cache_clear::handle(snap, uri),
        Route::KmsReload => reload::handle(live).await,
        Route::KmsHealth => {
            let path = uri.path();
            if path == "/kms/v1/health" {
                return respond::json(StatusCode::OK, &health::report(live, snap, None).await);
            }
            let store = path
                .strip_prefix("/kms/v1/stores/")
                .and_then(|r| r.strip_suffix("/health"))
                .unwrap_or_default();
            let Some(slot) = snap.store(store) else {
                return error_map::response(&kms::Error::new(
                    kms::ErrorKind::NotFound,
                    format!("no store named {store:?}"),
                ));
            };
            let is_default = snap.default_store.as_deref() == Some(store);
            let h = health::probe(slot, is_default, snap.agent.readiness_timeout).await;
            let status = if h.status == StoreStatus::Down {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            respond::json(status, &h)
        }
        _ => respond::text(StatusCode::NOT_FOUND, "Not found"),
    }
}
