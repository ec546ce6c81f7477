//! Health: the background probe behind `<p>_key_backend_up`, and [`HealthReport`], a JSON
//! document for a Kubernetes readiness endpoint.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kms_core::{CircuitState, ErrorKind, KeyStore};
use parking_lot::Mutex;
use prometheus_client::metrics::gauge::Gauge;
use serde::Serialize;

/// Overall status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Every backend is up and no circuit is open.
    Ok,
    /// Some backend is down or some circuit is not closed.
    Degraded,
    /// Every backend is down.
    Down,
}

/// One backend's health.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct BackendHealth {
    /// The backend label.
    pub backend: &'static str,
    /// Whether the last probe or call outcome said it answers.
    pub up: bool,
    /// Latency of the last health probe, in milliseconds.
    pub probe_latency_ms: Option<f64>,
    /// The kind of the last error that marked it down.
    pub last_error_kind: Option<&'static str>,
    /// The circuit breaker state, when one is wired.
    pub circuit_state: Option<&'static str>,
    /// When it was last checked, in Unix seconds.
    pub checked_at: Option<u64>,
}

/// The health of every instrumented backend; serialisable to JSON.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct HealthReport {
    /// Overall status.
    pub status: HealthStatus,
    /// Per backend.
    pub backends: Vec<BackendHealth>,
}

impl HealthReport {
    /// Whether a readiness probe should pass (`ok` or `degraded` with at least one backend up).
    pub fn is_ready(&self) -> bool {
        self.status != HealthStatus::Down
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports serialise")
    }
}

/// Health state shared by every instrumented store of one [`KmsMetrics`](crate::KmsMetrics).
#[derive(Default)]
pub(crate) struct HealthBoard {
    backends: Mutex<BTreeMap<&'static str, BackendHealth>>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl HealthBoard {
    pub(crate) fn update(
        &self,
        backend: &'static str,
        up: bool,
        latency: Option<Duration>,
        error: Option<ErrorKind>,
    ) {
        let mut backends = self.backends.lock();
        let entry = backends.entry(backend).or_insert_with(|| BackendHealth {
            backend,
            up,
            probe_latency_ms: None,
            last_error_kind: None,
            circuit_state: None,
            checked_at: None,
        });
        entry.up = up;
        if let Some(latency) = latency {
            entry.probe_latency_ms = Some(latency.as_secs_f64() * 1000.0);
        }
        if let Some(kind) = error {
            entry.last_error_kind = Some(kind.as_str());
        }
        entry.checked_at = Some(unix_now());
    }

    pub(crate) fn set_circuit(&self, backend: &'static str, state: CircuitState) {
        let mut backends = self.backends.lock();
        let entry = backends.entry(backend).or_insert_with(|| BackendHealth {
            backend,
            up: true,
            probe_latency_ms: None,
            last_error_kind: None,
            circuit_state: None,
            checked_at: None,
        });
        entry.circuit_state = Some(state.as_str());
    }

    pub(crate) fn report(&self) -> HealthReport {
        let backends: Vec<BackendHealth> = self.backends.lock().values().cloned().collect();
        let up = backends.iter().filter(|b| b.up).count();
        let circuits_closed = backends
            .iter()
            .all(|b| b.circuit_state.is_none_or(|s| s == "closed"));
        let status = if backends.is_empty() || (up == backends.len() && circuits_closed) {
            HealthStatus::Ok
        } else if up == 0 {
            HealthStatus::Down
        } else {
            HealthStatus::Degraded
        };
        HealthReport { status, backends }
    }
}

/// Probes `store` every `interval` until it is dropped, feeding the gauge and the board.
pub(crate) fn spawn_probe(
    store: Weak<dyn KeyStore>,
    backend: &'static str,
    interval: Duration,
    gauge: Gauge,
    board: Arc<HealthBoard>,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(
            backend,
            "no tokio runtime: the kms health probe is not running"
        );
        return;
    };
    runtime.spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(store) = store.upgrade() else { break };
            let start = tokio::time::Instant::now();
            let outcome = store.health().await;
            drop(store);
            let latency = start.elapsed();
            gauge.set(i64::from(outcome.is_ok()));
            board.update(
                backend,
                outcome.is_ok(),
                Some(latency),
                outcome.err().map(|e| e.kind()),
            );
        }
    });
}
