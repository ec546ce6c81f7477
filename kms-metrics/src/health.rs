//! [`HealthReport`]: the health of every monitored backend and provider, as JSON for the
//! service's health endpoints, fed by [`BackendMonitor`](crate::BackendMonitor)s (probe and
//! backend calls), [`InstrumentedProvider`](crate::InstrumentedProvider)s and circuit-state
//! hooks.
//!
//! # Which endpoint for what
//!
//! - **Liveness** (restart the pod if it fails): the process answers HTTP. It must not look
//!   at backends: restarting every pod does not unseal Vault.
//! - **Readiness** (take the pod out of the load balancer): [`HealthReport::is_ready`]. A
//!   backend outage makes the report `degraded`, which is *ready*: the cache keeps serving what
//!   it holds (stale-if-error), and every pod shares the backend, so pulling pods only turns a
//!   partial outage into a full one. Only `down` (every backend down and none with a cache in
//!   front) is not ready.
//! - **Alerting**: the Prometheus series and `monitoring/alerts.yml`, never the health
//!   endpoint (it has no history and no `for:`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kms_core::{CircuitState, Error};
use parking_lot::Mutex;
use serde::Serialize;

/// The longest error message a report carries, in characters.
const MAX_MESSAGE: usize = 300;

/// Overall status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Every backend is up: it answered its last probe or call, and, if its circuit opened,
    /// it has answered since (a circuit still half-open then only waits for its trial calls).
    Ok,
    /// Some backend is down, or its circuit is open or half-open and it has not answered
    /// since, but the service still answers: another backend is up, or a cache in front of the
    /// down one serves what it holds. Ready.
    Degraded,
    /// Every backend is down and none has a cache in front. Not ready.
    Down,
}

/// One backend's (or provider's) health.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct BackendHealth {
    /// The backend label (`vault`, `aws`, `aws_kms`, ...).
    pub backend: &'static str,
    /// The store label (the name the service gave the store, or the backend label).
    pub store: String,
    /// Whether the backend itself answered its last probe or call; `None` before either.
    pub up: Option<bool>,
    /// Latency of the last health probe, in milliseconds.
    pub probe_latency_ms: Option<f64>,
    /// The kind of the last error that said the backend is down; cleared when it answers.
    pub last_error_kind: Option<&'static str>,
    /// That error's message (written by this workspace's code: never a value, token or
    /// credential), at most 300 characters; cleared when it answers.
    pub last_error: Option<String>,
    /// The circuit breaker state, when one is wired.
    pub circuit_state: Option<&'static str>,
    /// Whether a cache sits in front of this store (it keeps serving during an outage).
    pub cached: bool,
    /// When it was last checked, in Unix seconds.
    pub checked_at: Option<u64>,
}

impl BackendHealth {
    fn new(backend: &'static str, store: &str) -> Self {
        Self {
            backend,
            store: store.to_owned(),
            up: None,
            probe_latency_ms: None,
            last_error_kind: None,
            last_error: None,
            circuit_state: None,
            cached: false,
            checked_at: None,
        }
    }

    /// Up, or (before anything was heard from the backend) with no circuit other than
    /// closed. A circuit opening sets `up` to false, and only an answer from the backend sets
    /// it back: so a backend whose probe answers again is healthy at once, without waiting
    /// for its breaker's trial calls, which at low traffic come seconds apart.
    fn healthy(&self) -> bool {
        match self.up {
            Some(up) => up,
            None => self.circuit_state.is_none_or(|s| s == "closed"),
        }
    }
}

/// The health of every monitored backend; serialisable to JSON.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct HealthReport {
    /// Overall status.
    pub status: HealthStatus,
    /// Whether a readiness probe should pass ([`is_ready`](Self::is_ready)).
    pub ready: bool,
    /// The version of kms-metrics that wrote the report.
    pub version: &'static str,
    /// When the report was made, in Unix seconds.
    pub timestamp: u64,
    /// The same instant in RFC 3339 (UTC).
    pub time: String,
    /// Per backend and store.
    pub backends: Vec<BackendHealth>,
}

impl HealthReport {
    /// Whether a readiness probe should pass: `ok` and `degraded` are ready, `down` is not.
    pub fn is_ready(&self) -> bool {
        self.status != HealthStatus::Down
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports serialise")
    }
}

/// Health state shared by every monitor of one [`KmsMetrics`](crate::KmsMetrics).
#[derive(Default)]
pub(crate) struct HealthBoard {
    backends: Mutex<BTreeMap<(&'static str, Arc<str>), BackendHealth>>,
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `secs` (Unix time) as RFC 3339 UTC, e.g. `2026-11-29T18:00:00Z`.
fn rfc3339(secs: u64) -> String {
    // Days to civil date: Howard Hinnant's `civil_from_days`.
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn truncated(message: String) -> String {
    if message.chars().count() <= MAX_MESSAGE {
        return message;
    }
    let mut out: String = message.chars().take(MAX_MESSAGE).collect();
    out.push('…');
    out
}

impl HealthBoard {
    fn with(
        &self,
        backend: &'static str,
        store: &Arc<str>,
        change: impl FnOnce(&mut BackendHealth),
    ) {
        let mut backends = self.backends.lock();
        let entry = backends
            .entry((backend, store.clone()))
            .or_insert_with(|| BackendHealth::new(backend, store));
        change(entry);
    }

    /// Records what a probe (with its latency) or a backend call said: `Ok` (the backend
    /// answered: clears the last error) or the error that says it is down.
    pub(crate) fn record(
        &self,
        backend: &'static str,
        store: &Arc<str>,
        outcome: Result<(), &Error>,
        probe_latency: Option<Duration>,
    ) {
        self.with(backend, store, |entry| {
            entry.up = Some(outcome.is_ok());
            match outcome {
                Ok(()) => {
                    entry.last_error_kind = None;
                    entry.last_error = None;
                }
                Err(e) => {
                    entry.last_error_kind = Some(e.kind().as_str());
                    entry.last_error = Some(truncated(e.to_string()));
                }
            }
            if let Some(latency) = probe_latency {
                entry.probe_latency_ms = Some(latency.as_secs_f64() * 1000.0);
            }
            entry.checked_at = Some(unix_now());
        });
    }

    pub(crate) fn set_circuit(&self, backend: &'static str, store: &Arc<str>, state: CircuitState) {
        self.with(backend, store, |entry| {
            entry.circuit_state = Some(state.as_str());
            if state == CircuitState::Open {
                entry.up = Some(false);
                if entry.last_error_kind.is_none() {
                    entry.last_error_kind = Some("circuit_open");
                    entry.last_error =
                        Some("the circuit breaker opened after backend failures".to_owned());
                }
            }
        });
    }

    pub(crate) fn set_cached(&self, backend: &'static str, store: &Arc<str>) {
        self.with(backend, store, |entry| entry.cached = true);
    }

    pub(crate) fn report(&self) -> HealthReport {
        let backends: Vec<BackendHealth> = self.backends.lock().values().cloned().collect();
        let status = if backends.iter().all(BackendHealth::healthy) {
            HealthStatus::Ok
        } else if backends.iter().any(|b| b.up != Some(false) || b.cached) {
            HealthStatus::Degraded
        } else {
            HealthStatus::Down
        };
        let timestamp = unix_now();
        HealthReport {
            status,
            ready: status != HealthStatus::Down,
            version: env!("CARGO_PKG_VERSION"),
            timestamp,
            time: rfc3339(timestamp),
            backends,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_utc_civil_time() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_975_199), "2026-11-29T17:59:59Z");
    }

    #[test]
    fn long_messages_are_cut() {
        let cut = truncated("x".repeat(1000));
        assert_eq!(cut.chars().count(), MAX_MESSAGE + 1);
    }
}
