//! [`KmsMetrics`]: the metric families, registered into the service's own registry.
//!
//! The handles each decorator resolves from them are made beside the decorator that uses
//! them (`instrumented.rs`, `monitored.rs`, `provider.rs`, `cache_observer.rs`), and so are
//! the factories that make the decorators' layers (`KmsMetrics::layer`,
//! `KmsMetrics::backend_monitor`, ...): this file knows none of them.

use std::collections::HashSet;
use std::sync::Arc;

use kms_core::{CircuitState, ErrorKind, Operation, Result};
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::buckets::STALENESS_BUCKETS;
use crate::health::{HealthBoard, HealthReport};
use crate::histogram::LatencyHistogram;
use crate::key_age::KeyAgeGauge;
use crate::labels::{
    BackendLabels, DurationLabels, ErrorLabels, EvictionLabels, LoadLabels, OperationLabels,
    RejectionLabels, RotationLabels,
};
use crate::lazy_gauge::LazyGauge;
use crate::sharded::ShardedCounter;
use crate::stale_age::StaleAgeGauge;
use crate::store_name::{MAX_STORE_NAMES, StoreName, store_label};

/// The default metric name prefix.
pub const DEFAULT_PREFIX: &str = "kms";

/// Every family, shared by all the handles resolved from it.
pub(crate) struct Families {
    pub(crate) operations: Family<OperationLabels, ShardedCounter>,
    pub(crate) errors: Family<ErrorLabels, Counter>,
    pub(crate) duration: Family<DurationLabels, LatencyHistogram>,
    pub(crate) in_flight: Family<DurationLabels, Gauge>,
    pub(crate) backend_requests: Family<OperationLabels, Counter>,
    pub(crate) backend_duration: Family<DurationLabels, LatencyHistogram>,
    pub(crate) backend_retries: Family<ErrorLabels, Counter>,
    pub(crate) cache_hits: Family<BackendLabels, Counter>,
    pub(crate) cache_misses: Family<BackendLabels, Counter>,
    pub(crate) cache_stale_serves: Family<BackendLabels, Counter>,
    pub(crate) cache_stale_age: Family<BackendLabels, StaleAgeGauge>,
    pub(crate) cache_staleness: Family<BackendLabels, Histogram, fn() -> Histogram>,
    pub(crate) cache_loads: Family<LoadLabels, Counter>,
    pub(crate) cache_evictions: Family<EvictionLabels, Counter>,
    pub(crate) cache_size: Family<BackendLabels, Gauge>,
    pub(crate) credential_rejections: Family<RejectionLabels, Counter>,
    pub(crate) backend_up: Family<BackendLabels, Gauge>,
    pub(crate) circuit_state: Family<BackendLabels, Gauge>,
    pub(crate) key_age: Family<BackendLabels, KeyAgeGauge>,
    pub(crate) rotations: Family<RotationLabels, Counter>,
    pub(crate) last_rotation: Family<BackendLabels, Gauge>,
    pub(crate) health: Arc<HealthBoard>,
    store_names: Mutex<HashSet<Arc<str>>>,
}

impl Families {
    /// Counts a failure by kind (the failure path may look up its label set).
    pub(crate) fn count_error(
        &self,
        operation: &'static str,
        backend: &'static str,
        store: &Arc<str>,
        kind: ErrorKind,
    ) {
        self.errors
            .get_or_create(&ErrorLabels {
                operation,
                backend,
                store: store.clone(),
                kind: kind.as_str(),
            })
            .inc();
    }
}

/// A histogram of [`STALENESS_BUCKETS`].
fn staleness_histogram() -> Histogram {
    Histogram::new(STALENESS_BUCKETS)
}

/// The metric families of this workspace, registered in a [`Registry`] under a prefix
/// (default `kms`), beside the service's own metrics. The crate README lists them with their
/// labels and who feeds each.
///
/// No label ever holds a key name or a value. Cloning is cheap (one `Arc`).
#[derive(Clone)]
pub struct KmsMetrics {
    pub(crate) families: Arc<Families>,
}

impl KmsMetrics {
    /// Registers the families in `registry` with the default prefix `kms`.
    pub fn register(registry: &mut Registry) -> Self {
        Self::register_with_prefix(registry, DEFAULT_PREFIX)
    }

    /// Registers the families in `registry` under `prefix` (a sub-registry).
    pub fn register_with_prefix(registry: &mut Registry, prefix: &str) -> Self {
        let families = Families {
            operations: Family::default(),
            errors: Family::default(),
            duration: Family::default(),
            in_flight: Family::default(),
            backend_requests: Family::default(),
            backend_duration: Family::default(),
            backend_retries: Family::default(),
            cache_hits: Family::default(),
            cache_misses: Family::default(),
            cache_stale_serves: Family::default(),
            cache_stale_age: Family::default(),
            cache_staleness: Family::new_with_constructor(staleness_histogram),
            cache_loads: Family::default(),
            cache_evictions: Family::default(),
            cache_size: Family::default(),
            credential_rejections: Family::default(),
            backend_up: Family::default(),
            circuit_state: Family::default(),
            key_age: Family::default(),
            rotations: Family::default(),
            last_rotation: Family::default(),
            health: Arc::default(),
            store_names: Mutex::default(),
        };
        let r = registry.sub_registry_with_prefix(prefix);
        let f = &families;
        r.register(
            "key_operations",
            "Key store operations as the service sees them, by status: success, not_found and conflict (answers), stale (a get answered with an expired cache entry), failure, abandoned (the caller gave up)",
            f.operations.clone(),
        );
        r.register(
            "key_operation_errors",
            "Key store operations that returned an error, by error kind (every kind pre-created at 0)",
            f.errors.clone(),
        );
        r.register(
            "key_operation_duration_seconds",
            "Latency of key store operations as the service sees them (cache hits included)",
            f.duration.clone(),
        );
        r.register(
            "key_operations_in_flight",
            "Key store operations started and not yet finished (cache hits answered at once are not counted)",
            f.in_flight.clone(),
        );
        r.register(
            "key_backend_requests",
            "Calls that reached the backend (each retry attempt once), by status",
            f.backend_requests.clone(),
        );
        r.register(
            "key_backend_request_duration_seconds",
            "Latency of calls that reached the backend (each retry attempt once)",
            f.backend_duration.clone(),
        );
        r.register(
            "key_backend_retries",
            "Backend calls retried by the retry layer, by the error kind that caused the retry",
            f.backend_retries.clone(),
        );
        r.register(
            "key_cache_hits",
            "Key reads answered by a fresh cache entry",
            f.cache_hits.clone(),
        );
        r.register(
            "key_cache_misses",
            "Key reads that found no fresh cache entry (including those then answered stale)",
            f.cache_misses.clone(),
        );
        r.register(
            "key_cache_stale_serves",
            "Key reads answered with an expired cache entry because the backend failed, was slow or was known down (stale-if-error)",
            f.cache_stale_serves.clone(),
        );
        r.register(
            "key_cache_stale_age_seconds",
            "How far past its TTL the oldest value the cache serves stale is: the largest staleness served since the cache last loaded a value, 0 once a load succeeds or no stale value was served for a minute",
            f.cache_stale_age.clone(),
        );
        r.register(
            "key_cache_stale_serve_age_seconds",
            "How far past its TTL each value the cache served stale was, at the time it was served",
            f.cache_staleness.clone(),
        );
        r.register(
            "key_cache_loads",
            "Loads from the store below the cache, by status (success or failure)",
            f.cache_loads.clone(),
        );
        r.register(
            "key_cache_evictions",
            "Entries that left the cache, by cause: expired, size, explicit",
            f.cache_evictions.clone(),
        );
        r.register(
            "key_cache_size",
            "Entries held by the key cache",
            f.cache_size.clone(),
        );
        r.register(
            "key_credential_rejections",
            "Reports that a credential the cache served was refused downstream, by outcome: refreshed, ignored_unknown, rate_limited, still_rejected, failed",
            f.credential_rejections.clone(),
        );
        r.register(
            "key_backend_up",
            "Whether the backend itself answers (1) or not (0): its health probe, the outcomes of calls that reached it, 0 while its circuit is open",
            f.backend_up.clone(),
        );
        r.register(
            "circuit_breaker_state",
            "Circuit breaker state: 0 closed, 1 open, 2 half-open",
            f.circuit_state.clone(),
        );
        r.register(
            "key_age_seconds",
            "Age of the oldest current key version the backend returned (keys read or written within the key-age window)",
            f.key_age.clone(),
        );
        r.register(
            "key_rotations",
            "Key rotations (kms_core::rotation::Rotation) by outcome: success, conflict (another writer won), failure",
            f.rotations.clone(),
        );
        r.register(
            "key_last_rotation_timestamp_seconds",
            "Unix time of the last successful key rotation in the store",
            f.last_rotation.clone(),
        );
        Self {
            families: Arc::new(families),
        }
    }

    /// Registers a store name for the `store` label (see [`StoreName`]).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`](kms_core::ErrorKind::Configuration) naming `store_name` when
    /// `name` is not 1–48 characters of `a-z`, `0-9`, `_`, `-`, `.`, or when it would be the
    /// 33rd distinct name of these metrics.
    pub fn store_name(&self, name: &str) -> Result<StoreName> {
        let parsed = StoreName::parse(name)?;
        let mut names = self.families.store_names.lock();
        if !names.contains(&parsed.0) && names.len() >= MAX_STORE_NAMES {
            return Err(kms_core::Error::new(
                kms_core::ErrorKind::Configuration,
                format!("store_name: more than {MAX_STORE_NAMES} distinct store names"),
            ));
        }
        names.insert(parsed.0.clone());
        Ok(parsed)
    }

    /// A hook for `kms_core::CircuitBreakerLayer::on_state_change` that sets
    /// `<p>_circuit_breaker_state{backend}` and, while the circuit is open,
    /// `<p>_key_backend_up{backend}` to 0; the state gauge starts at 0 (closed). Store label =
    /// the backend label; [`BackendMonitor::circuit_breaker`](crate::BackendMonitor::circuit_breaker) does the same for a named store.
    pub fn circuit_state_recorder(
        &self,
        backend: &'static str,
    ) -> impl Fn(CircuitState) + Send + Sync + 'static {
        self.circuit_state_recorder_for(backend, None)
    }

    /// [`circuit_state_recorder`](Self::circuit_state_recorder) for the store named `store`.
    pub fn circuit_state_recorder_for(
        &self,
        backend: &'static str,
        store: Option<&StoreName>,
    ) -> impl Fn(CircuitState) + Send + Sync + 'static {
        let store = store_label(store, backend);
        let labels = BackendLabels {
            backend,
            store: store.clone(),
        };
        let gauge = self.families.circuit_state.get_or_create_owned(&labels);
        // Created at the first open, not now: no made-up 0 before anything is known.
        let up = LazyGauge::new(&self.families.backend_up, labels);
        gauge.set(CircuitState::Closed.as_gauge());
        let board = self.families.health.clone();
        board.set_circuit(backend, &store, CircuitState::Closed);
        move |state| {
            gauge.set(state.as_gauge());
            if state == CircuitState::Open {
                up.set(0);
            }
            board.set_circuit(backend, &store, state);
        }
    }

    /// The health of every monitored backend and provider, for the health endpoints.
    pub fn health_report(&self) -> HealthReport {
        self.families.health.report()
    }

    /// The current `<p>_key_backend_up{backend, store=backend}` value, if the series exists.
    pub fn backend_up(&self, backend: &'static str) -> Option<bool> {
        self.backend_up_of(backend, None)
    }

    /// The current `<p>_key_backend_up{backend, store}` value, if the series exists.
    pub fn backend_up_of(&self, backend: &'static str, store: Option<&StoreName>) -> Option<bool> {
        self.families
            .backend_up
            .get(&BackendLabels {
                backend,
                store: store_label(store, backend),
            })
            .map(|g| g.get() == 1)
    }

    /// The current `<p>_circuit_breaker_state{backend, store=backend}` value, if it exists.
    pub fn circuit_state_gauge(&self, backend: &'static str) -> Option<i64> {
        self.families
            .circuit_state
            .get(&BackendLabels {
                backend,
                store: Arc::from(backend),
            })
            .map(|g| g.get())
    }

    /// Counts one retry of `operation` on `backend` after an error of `kind` in
    /// `<p>_key_backend_retries_total{operation,backend,store,kind}` and emits a `DEBUG` event
    /// (target `kms::retry`) with the retry's number (`attempt`: 1 for the first retry) and
    /// the delay since the failed attempt ended. A [`BackendMonitor`](crate::BackendMonitor)
    /// below kms-core's retry layer calls it for every retry that layer makes (it reads the
    /// retry from the [`CallContext`](kms_core::CallContext)); call it from any other retry
    /// mechanism.
    pub fn record_retry(
        &self,
        operation: Operation,
        backend: &'static str,
        store: Option<&StoreName>,
        kind: ErrorKind,
        attempt: u32,
        delay: std::time::Duration,
    ) {
        self.families
            .backend_retries
            .get_or_create(&ErrorLabels {
                operation: operation.as_str(),
                backend,
                store: store_label(store, backend),
                kind: kind.as_str(),
            })
            .inc();
        tracing::debug!(
            target: "kms::retry",
            operation = operation.as_str(),
            backend,
            error_kind = kind.as_str(),
            attempt,
            delay_ms = delay.as_millis() as u64,
            "retrying a backend call"
        );
    }
}

impl std::fmt::Debug for KmsMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsMetrics").finish_non_exhaustive()
    }
}
