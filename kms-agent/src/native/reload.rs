//! `POST /kms/v1/reload`: what SIGHUP does, for who cannot send a signal (another container,
//! a deploy hook): the configuration file is re-read and applied; stores whose configuration
//! is unchanged keep serving with their caches. Token-protected; `POST` only.
//!
//! Answer: 200 `{"generation": 3, "kept": […], "rebuilt": […], "added": […], "removed": […]}`;
//! a refused configuration is 422 `{"error": {"kind": "configuration", "message": …}}` (the
//! message names the key, never a value) and the previous configuration keeps serving, as
//! after a refused SIGHUP (logged, counted, shown in `/readyz`).

use http::{Response, StatusCode};
use kms::ErrorKind;
use serde::Serialize;

use super::error_map::response;
use crate::live::Live;
use crate::respond::{self, Body};
use crate::snapshot::Changes;

#[derive(Serialize)]
struct Answer {
    generation: u64,
    #[serde(flatten)]
    changes: Changes,
}

/// Answers a reload request.
pub async fn handle(live: &Live) -> Response<Body> {
    match live.reload().await {
        Ok(changes) => respond::json(
            StatusCode::OK,
            &Answer {
                generation: live.snapshot().generation,
                changes,
            },
        ),
        Err(e) if e.kind() == ErrorKind::Configuration => {
            let mut r = response(&e);
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            r
        }
        Err(e) => response(&e),
    }
}
