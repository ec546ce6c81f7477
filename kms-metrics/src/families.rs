//! [`KmsMetrics`]: the metric families, registered into the service's own registry.

use std::collections::HashSet;
use std::sync::Arc;

use kms_cache::{CacheObserver, EvictionCause};
use kms_core::{CircuitState, CryptoOperation, CryptoProvider, ErrorKind, Operation, Result};
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::cache_observer::CacheMetrics;
use crate::health::{HealthBoard, HealthReport};
use crate::histogram::LatencyHistogram;
use crate::instrumented::MetricsLayer;
use crate::key_age::KeyAgeGauge;
use crate::labels::{
    BackendLabels, DurationLabels, ErrorLabels, EvictionLabels, LoadLabels, OperationLabels,
};
use crate::monitor::BackendMonitor;
use crate::provider::InstrumentedProvider;
use crate::sharded::ShardedCounter;
use crate::status::{STATUSES, Status};
use crate::store_name::{MAX_STORE_NAMES, StoreName, store_label};

/// The default metric name prefix.
pub const DEFAULT_PREFIX: &str = "kms";

/// The operations that carry the `operation` label (health has its own gauge).
pub(crate) const OPERATIONS: [Operation; 4] = [
    Operation::Get,
    Operation::Store,
    Operation::Remove,
    Operation::List,
];

pub(crate) fn op_index(op: Operation) -> usize {
    match op {
        Operation::Get => 0,
        Operation::Store => 1,
        Operation::Remove => 2,
        _ => 3,
    }
}

/// The index of a provider operation in [`ProviderMetrics::ops`].
pub(crate) fn crypto_index(op: CryptoOperation) -> usize {
    match op {
        CryptoOperation::Encrypt => 0,
        CryptoOperation::Decrypt => 1,
        _ => 2,
    }
}

const EVICTION_CAUSES: [EvictionCause; 3] = [
    EvictionCause::Expired,
    EvictionCause::Size,
    EvictionCause::Explicit,
];

pub(crate) struct Families {
    operations: Family<OperationLabels, ShardedCounter>,
    errors: Family<ErrorLabels, Counter>,
    duration: Family<DurationLabels, LatencyHistogram>,
    in_flight: Family<DurationLabels, Gauge>,
    backend_requests: Family<OperationLabels, Counter>,
    backend_duration: Family<DurationLabels, LatencyHistogram>,
    backend_retries: Family<ErrorLabels, Counter>,
    cache_hits: Family<BackendLabels, Counter>,
    cache_misses: Family<BackendLabels, Counter>,
    cache_stale_serves: Family<BackendLabels, Counter>,
    cache_loads: Family<LoadLabels, Counter>,
    cache_evictions: Family<EvictionLabels, Counter>,
    cache_size: Family<BackendLabels, Gauge>,
    pub(crate) backend_up: Family<BackendLabels, Gauge>,
    circuit_state: Family<BackendLabels, Gauge>,
    pub(crate) key_age: Family<BackendLabels, KeyAgeGauge>,
    pub(crate) health: Arc<HealthBoard>,
    store_names: Mutex<HashSet<Arc<str>>>,
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
            cache_loads: Family::default(),
            cache_evictions: Family::default(),
            cache_size: Family::default(),
            backend_up: Family::default(),
            circuit_state: Family::default(),
            key_age: Family::default(),
            health: Arc::default(),
            store_names: Mutex::default(),
        };
        let r = registry.sub_registry_with_prefix(prefix);
        let f = &families;
        r.register(
            "key_operations",
            "Key store operations as the service sees them, by status: success, not_found and conflict (answers), failure, abandoned (the caller gave up)",
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
            "Key reads answered with an expired cache entry because the backend failed (stale-if-error)",
            f.cache_stale_serves.clone(),
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

    /// The pre-resolved counters and histograms of one `(operation, backend, store)`; every
    /// status and error kind is created at 0, so the first failure is visible to `increase()`.
    fn series(&self, operation: &'static str, backend: &'static str, store: &Arc<str>) -> OpSeries {
        let f = &self.families;
        for kind in ErrorKind::ALL {
            drop(f.errors.get_or_create(&ErrorLabels {
                operation,
                backend,
                store: store.clone(),
                kind: kind.as_str(),
            }));
        }
        let labels = DurationLabels {
            operation,
            backend,
            store: store.clone(),
        };
        OpSeries {
            counts: STATUSES.map(|status| {
                f.operations.get_or_create_owned(&OperationLabels {
                    operation,
                    backend,
                    store: store.clone(),
                    status,
                })
            }),
            duration: f.duration.get_or_create_owned(&labels),
            in_flight: f.in_flight.get_or_create_owned(&labels),
        }
    }

    /// The pre-resolved handles of one store's service-side series.
    pub(crate) fn backend(
        &self,
        backend: &'static str,
        store: Option<&StoreName>,
    ) -> BackendMetrics {
        let store = store_label(store, backend);
        BackendMetrics {
            backend,
            ops: OPERATIONS.map(|o| self.series(o.as_str(), backend, &store)),
            store,
            families: self.families.clone(),
        }
    }

    /// The pre-resolved handles of one store's backend-side series (the monitor's).
    pub(crate) fn backend_side(
        &self,
        backend: &'static str,
        store: Option<&StoreName>,
    ) -> BackendSide {
        let store = store_label(store, backend);
        let f = &self.families;
        let requests = OPERATIONS.map(|op| {
            let operation = op.as_str();
            for kind in ErrorKind::ALL.iter().filter(|k| k.is_retryable()) {
                drop(f.backend_retries.get_or_create(&ErrorLabels {
                    operation,
                    backend,
                    store: store.clone(),
                    kind: kind.as_str(),
                }));
            }
            BackendOpSeries {
                counts: STATUSES.map(|status| {
                    f.backend_requests.get_or_create_owned(&OperationLabels {
                        operation,
                        backend,
                        store: store.clone(),
                        status,
                    })
                }),
                duration: f.backend_duration.get_or_create_owned(&DurationLabels {
                    operation,
                    backend,
                    store: store.clone(),
                }),
            }
        });
        let labels = BackendLabels {
            backend,
            store: store.clone(),
        };
        BackendSide {
            backend,
            requests,
            up: LazyGauge::new(&f.backend_up, labels.clone()),
            key_age: f.key_age.get_or_create_owned(&labels),
            store,
        }
    }

    /// The pre-resolved handles of one provider's series (built once per wrapped provider).
    pub(crate) fn provider(&self, provider: &'static str) -> ProviderMetrics {
        let store: Arc<str> = Arc::from(provider);
        ProviderMetrics {
            provider,
            ops: CryptoOperation::ALL.map(|o| self.series(o.as_str(), provider, &store)),
            up: LazyGauge::new(
                &self.families.backend_up,
                BackendLabels {
                    backend: provider,
                    store: store.clone(),
                },
            ),
            store,
            families: self.families.clone(),
        }
    }

    /// Wraps a [`CryptoProvider`] (AWS KMS, Vault Transit, `LocalKeyProvider`, ...) so that
    /// every `encrypt`, `decrypt` and `generate_data_key` is counted in
    /// `<p>_key_operations_total`, `<p>_key_operation_errors_total` and
    /// `<p>_key_operation_duration_seconds` with `backend` = [`CryptoProvider::provider`], sets
    /// `<p>_key_backend_up{backend}` from the outcomes, gets a `kms.<operation>` span and, on
    /// failure, an audit event. The result is itself a `CryptoProvider`: hand it to the
    /// envelope decorator in place of the bare provider. Put it in an `Arc` and call
    /// [`InstrumentedProvider::spawn_probe`] for a health probe.
    pub fn instrument_provider<P: CryptoProvider>(&self, provider: P) -> InstrumentedProvider<P> {
        InstrumentedProvider::new(self, provider)
    }

    /// A [`CacheObserver`] feeding the `<p>_key_cache_*` families for `backend` (store label =
    /// the backend label): pass it to `kms_cache::CacheLayer::observer`.
    pub fn cache_observer(&self, backend: &'static str) -> Arc<dyn CacheObserver> {
        self.cache_observer_for(backend, None)
    }

    /// [`cache_observer`](Self::cache_observer) for the store named `store`.
    pub fn cache_observer_for(
        &self,
        backend: &'static str,
        store: Option<&StoreName>,
    ) -> Arc<dyn CacheObserver> {
        let store = store_label(store, backend);
        let b = BackendLabels {
            backend,
            store: store.clone(),
        };
        let f = &self.families;
        let load = |status| {
            f.cache_loads.get_or_create_owned(&LoadLabels {
                backend,
                store: store.clone(),
                status,
            })
        };
        f.health.set_cached(backend, &store);
        Arc::new(CacheMetrics {
            backend,
            store: store.clone(),
            hits: f.cache_hits.get_or_create_owned(&b),
            misses: f.cache_misses.get_or_create_owned(&b),
            stale_serves: f.cache_stale_serves.get_or_create_owned(&b),
            loads: load("success"),
            load_failures: load("failure"),
            evictions: EVICTION_CAUSES.map(|cause| {
                f.cache_evictions.get_or_create_owned(&EvictionLabels {
                    backend,
                    store: store.clone(),
                    cause: cause.as_str(),
                })
            }),
            size: f.cache_size.get_or_create_owned(&b),
            serving_stale: Default::default(),
        })
    }

    /// A hook for `kms_core::CircuitBreakerLayer::on_state_change` that sets
    /// `<p>_circuit_breaker_state{backend}` and, while the circuit is open,
    /// `<p>_key_backend_up{backend}` to 0; the state gauge starts at 0 (closed). Store label =
    /// the backend label; [`BackendMonitor::circuit_breaker`] does the same for a named store.
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

    /// A [`MetricsLayer`]: the service-side instrumentation (outermost in the stack).
    pub fn layer(&self) -> MetricsLayer {
        MetricsLayer::new(self.clone())
    }

    /// A [`BackendMonitor`]: the backend-side instrumentation and health probe (just above the
    /// timeout layer, below retry).
    pub fn backend_monitor(&self) -> BackendMonitor {
        BackendMonitor::new(self.clone())
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
    /// (target `kms::retry`). For a retry hook: `kms_core::RetryLayer` has none yet, so the
    /// counter stays at 0 until one calls this.
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

/// The pre-resolved series of one `(operation, backend, store)`.
pub(crate) struct OpSeries {
    /// Indexed by [`Status`].
    pub counts: [ShardedCounter; 5],
    pub duration: LatencyHistogram,
    pub in_flight: Gauge,
}

impl OpSeries {
    /// Counts one call of `nanos` in this thread's slots.
    #[inline(always)]
    pub(crate) fn observe(&self, status: Status, nanos: u64) {
        let slot = kms_core::sharded::Slot::current();
        self.duration.observe_ns_in(slot, nanos);
        self.counts[status as usize].inc_in(slot);
    }
}

/// One store's pre-resolved service-side series: the hot path increments atomics, never
/// looks up labels.
pub(crate) struct BackendMetrics {
    pub backend: &'static str,
    pub store: Arc<str>,
    /// Indexed by [`op_index`].
    pub ops: [OpSeries; 4],
    families: Arc<Families>,
}

impl BackendMetrics {
    /// Counts a failure by kind (the failure path may look up its label set).
    pub(crate) fn error(&self, op: Operation, kind: ErrorKind) {
        count_error(&self.families, op.as_str(), self.backend, &self.store, kind);
    }
}

/// The backend-side series of one operation.
pub(crate) struct BackendOpSeries {
    pub counts: [Counter; 5],
    pub duration: LatencyHistogram,
}

/// One store's pre-resolved backend-side series.
pub(crate) struct BackendSide {
    pub backend: &'static str,
    pub store: Arc<str>,
    /// Indexed by [`op_index`].
    pub requests: [BackendOpSeries; 4],
    pub up: LazyGauge,
    pub key_age: KeyAgeGauge,
}

/// One provider's pre-resolved series.
pub(crate) struct ProviderMetrics {
    pub provider: &'static str,
    pub store: Arc<str>,
    /// Indexed by [`crypto_index`].
    pub ops: [OpSeries; 3],
    pub up: LazyGauge,
    families: Arc<Families>,
}

impl ProviderMetrics {
    /// Counts a failure by kind (the failure path may look up its label set).
    pub(crate) fn error(&self, op: CryptoOperation, kind: ErrorKind) {
        count_error(
            &self.families,
            op.as_str(),
            self.provider,
            &self.store,
            kind,
        );
    }

    pub(crate) fn board(&self) -> &HealthBoard {
        &self.families.health
    }
}

fn count_error(
    families: &Families,
    operation: &'static str,
    backend: &'static str,
    store: &Arc<str>,
    kind: ErrorKind,
) {
    families
        .errors
        .get_or_create(&ErrorLabels {
            operation,
            backend,
            store: store.clone(),
            kind: kind.as_str(),
        })
        .inc();
}

/// A gauge whose series appears at its first [`set`](Self::set): `<p>_key_backend_up` has no
/// sample until a probe or a backend call has said something, rather than a made-up 0 or 1.
pub(crate) struct LazyGauge {
    family: Family<BackendLabels, Gauge>,
    labels: BackendLabels,
    gauge: std::sync::OnceLock<Gauge>,
}

impl LazyGauge {
    fn new(family: &Family<BackendLabels, Gauge>, labels: BackendLabels) -> Self {
        Self {
            family: family.clone(),
            labels,
            gauge: std::sync::OnceLock::new(),
        }
    }

    /// Sets the value, creating the series if needed.
    pub(crate) fn set(&self, value: i64) {
        self.gauge
            .get_or_init(|| self.family.get_or_create_owned(&self.labels))
            .set(value);
    }
}
