//! Readiness: whether every store answers, or its cache still serves what it holds within its
//! stale bound, and whether the prefetch has finished. Liveness (`/healthz`) is separate and
//! looks at nothing but the process: restarting the agent does not unseal Vault.
//!
//! Each store's `health` probe runs with `[agent] readiness_timeout`. A store whose probe
//! fails is
//! - `stale` (ready) when its cache has `stale_if_error` and the failure is one a cache
//!   bridges (unavailable, timeout, rate limited, circuit open), for as long as the outage is
//!   shorter than the cache's TTL plus `stale_if_error`: the cache keeps answering;
//! - `down` (not ready) otherwise, with the error's kind and message (never a value).

use std::time::Duration;

use futures::future::join_all;
use serde::Serialize;

use crate::live::{Live, PrefetchStatus, ReloadStatus};
use crate::snapshot::Snapshot;
use crate::store_slot::StoreSlot;

/// A store's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreStatus {
    /// The probe succeeded.
    Ok,
    /// The probe failed, and the cache is serving what it holds within its bound.
    Stale,
    /// The probe failed, and nothing bridges it.
    Down,
}

/// One store's health.
#[derive(Clone, Debug, Serialize)]
pub struct StoreHealth {
    /// The store's name.
    pub name: String,
    /// Its backend label.
    pub backend: &'static str,
    /// Whether it is the default store.
    pub default: bool,
    /// Its state.
    pub status: StoreStatus,
    /// The failure's kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// The failure's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How long the store has been failing, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down_for_seconds: Option<u64>,
    /// How long an outage the cache bridges, in seconds (TTL + `stale_if_error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_window_seconds: Option<u64>,
    /// The circuit breaker's state, when the store has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit: Option<&'static str>,
}

/// The readiness report (`/readyz`, `/kms/v1/health`).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Whether the agent is ready: the prefetch has finished and no store is `down`.
    pub ready: bool,
    /// The configuration's generation.
    pub generation: u64,
    /// The prefetch.
    pub prefetch: PrefetchStatus,
    /// The last reload, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reload: Option<ReloadStatus>,
    /// Per store.
    pub stores: Vec<StoreHealth>,
}

/// Probes one store.
pub async fn probe(slot: &StoreSlot, default: bool, timeout: Duration) -> StoreHealth {
    let result = match tokio::time::timeout(timeout, slot.store().health()).await {
        Ok(r) => r,
        Err(_) => Err(kms::Error::new(
            kms::ErrorKind::Timeout,
            format!(
                "no answer to the health probe within {}",
                kms::duration::format(timeout)
            ),
        )),
    };
    let window = slot.stale_window();
    let mut health = StoreHealth {
        name: slot.name().to_owned(),
        backend: slot.store().backend(),
        default,
        status: StoreStatus::Ok,
        kind: None,
        reason: None,
        down_for_seconds: None,
        stale_window_seconds: window.map(|w| w.as_secs()),
        circuit: slot.circuit().map(|c| c.as_str()),
    };
    if let Err(e) = result {
        let down_for = slot.record_health(false).unwrap_or_default();
        let bridged = e.kind().serves_stale() && window.is_some_and(|w| down_for <= w);
        health.status = if bridged {
            StoreStatus::Stale
        } else {
            StoreStatus::Down
        };
        health.kind = Some(e.kind().as_str());
        health.reason = Some(e.message().to_owned());
        health.down_for_seconds = Some(down_for.as_secs());
    } else {
        slot.record_health(true);
    }
    health
}

/// The report, over every store or only `only`.
pub async fn report(live: &Live, snap: &Snapshot, only: Option<&str>) -> Report {
    let timeout = snap.agent.readiness_timeout;
    let probes = snap
        .stores
        .iter()
        .filter(|(name, _)| only.is_none_or(|o| o == name.as_str()))
        .map(|(name, slot)| {
            probe(
                slot,
                snap.default_store.as_deref() == Some(name.as_str()),
                timeout,
            )
        });
    let stores = join_all(probes).await;
    let prefetch = live.prefetch();
    let ready =
        prefetch != PrefetchStatus::Pending && stores.iter().all(|s| s.status != StoreStatus::Down);
    Report {
        ready,
        generation: snap.generation,
        prefetch,
        last_reload: live.last_reload(),
        stores,
    }
}
