//! [`KmsMetrics`]: the metric families, registered into the service's own registry.

use std::sync::Arc;

use kms_cache::CacheObserver;
use kms_core::{CircuitState, CryptoOperation, CryptoProvider, ErrorKind, Operation};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::cache_observer::CacheMetrics;
use crate::health::{HealthBoard, HealthReport};
use crate::histogram::LatencyHistogram;
use crate::instrumented::MetricsLayer;
use crate::labels::{BackendLabels, DurationLabels, ErrorLabels, OperationLabels};
use crate::provider::InstrumentedProvider;
use crate::sharded::ShardedCounter;

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

pub(crate) struct Families {
    operations: Family<OperationLabels, ShardedCounter>,
    errors: Family<ErrorLabels, Counter>,
    duration: Family<DurationLabels, LatencyHistogram>,
    cache_hits: Family<BackendLabels, Counter>,
    cache_misses: Family<BackendLabels, Counter>,
    cache_size: Family<BackendLabels, Gauge>,
    backend_up: Family<BackendLabels, Gauge>,
    circuit_state: Family<BackendLabels, Gauge>,
    key_age: Family<BackendLabels, Gauge>,
    pub(crate) health: Arc<HealthBoard>,
}

/// The metric families of this workspace, registered in a [`Registry`] under a prefix
/// (default `kms`), beside the service's own metrics:
///
/// | family | type | labels |
/// |---|---|---|
/// | `<p>_key_operations_total` | counter | `operation`, `backend`, `status` (`success`/`failure`) |
/// | `<p>_key_operation_errors_total` | counter | `operation`, `backend`, `kind` |
/// | `<p>_key_operation_duration_seconds` | histogram | `operation`, `backend` |
/// | `<p>_key_cache_hits_total`, `<p>_key_cache_misses_total` | counter | `backend` |
/// | `<p>_key_cache_size` | gauge | `backend` |
/// | `<p>_key_backend_up` | gauge | `backend` |
/// | `<p>_circuit_breaker_state` | gauge | `backend` (0 closed, 1 open, 2 half-open) |
/// | `<p>_key_age_seconds` | gauge | `backend` |
///
/// The first three also count the calls of a [`CryptoProvider`] wrapped by
/// [`instrument_provider`](Self::instrument_provider), with `operation` = `encrypt`,
/// `decrypt` or `generate_data_key` and `backend` = the provider's label.
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
            cache_hits: Family::default(),
            cache_misses: Family::default(),
            cache_size: Family::default(),
            backend_up: Family::default(),
            circuit_state: Family::default(),
            key_age: Family::default(),
            health: Arc::default(),
        };
        let r = registry.sub_registry_with_prefix(prefix);
        r.register(
            "key_operations",
            "Key store operations by outcome",
            families.operations.clone(),
        );
        r.register(
            "key_operation_errors",
            "Failed key store operations by error kind",
            families.errors.clone(),
        );
        r.register(
            "key_operation_duration_seconds",
            "Latency of key store operations as the service sees them",
            families.duration.clone(),
        );
        r.register(
            "key_cache_hits",
            "Key reads answered by the cache",
            families.cache_hits.clone(),
        );
        r.register(
            "key_cache_misses",
            "Key reads not answered by the cache",
            families.cache_misses.clone(),
        );
        r.register(
            "key_cache_size",
            "Entries held by the key cache",
            families.cache_size.clone(),
        );
        r.register(
            "key_backend_up",
            "Whether the key backend answers (1) or not (0)",
            families.backend_up.clone(),
        );
        r.register(
            "circuit_breaker_state",
            "Circuit breaker state: 0 closed, 1 open, 2 half-open",
            families.circuit_state.clone(),
        );
        r.register(
            "key_age_seconds",
            "Age of the oldest key version read in the current window",
            families.key_age.clone(),
        );
        Self {
            families: Arc::new(families),
        }
    }

    /// The pre-resolved counters and histogram of one `(operation, backend)` pair.
    fn series(&self, operation: &'static str, backend: &'static str) -> OpSeries {
        let f = &self.families;
        let count = |status| {
            f.operations.get_or_create_owned(&OperationLabels {
                operation,
                backend,
                status,
            })
        };
        OpSeries {
            success: count("success"),
            failure: count("failure"),
            duration: f
                .duration
                .get_or_create_owned(&DurationLabels { operation, backend }),
        }
    }

    /// The pre-resolved handles of one backend's series (built once per decorated store).
    pub(crate) fn backend(&self, backend: &'static str) -> BackendMetrics {
        let b = BackendLabels { backend };
        BackendMetrics {
            backend,
            ops: OPERATIONS.map(|o| self.series(o.as_str(), backend)),
            up: self.families.backend_up.get_or_create_owned(&b),
            key_age: self.families.key_age.get_or_create_owned(&b),
            families: self.families.clone(),
        }
    }

    /// The pre-resolved handles of one provider's series (built once per wrapped provider).
    pub(crate) fn provider(&self, provider: &'static str) -> ProviderMetrics {
        ProviderMetrics {
            provider,
            ops: CryptoOperation::ALL.map(|o| self.series(o.as_str(), provider)),
            families: self.families.clone(),
        }
    }

    /// Wraps a [`CryptoProvider`] (AWS KMS, Vault Transit, `LocalKeyProvider`, ...) so that
    /// every `encrypt`, `decrypt` and `generate_data_key` is counted in
    /// `<p>_key_operations_total`, `<p>_key_operation_errors_total` and
    /// `<p>_key_operation_duration_seconds` with `backend` = [`CryptoProvider::provider`], gets
    /// a `kms.<operation>` span and, on failure, an audit event. The result is itself a
    /// `CryptoProvider`: hand it to the envelope decorator in place of the bare provider.
    pub fn instrument_provider<P: CryptoProvider>(&self, provider: P) -> InstrumentedProvider<P> {
        InstrumentedProvider::new(self, provider)
    }

    /// A [`CacheObserver`] feeding `<p>_key_cache_hits_total`, `<p>_key_cache_misses_total` and
    /// `<p>_key_cache_size` for `backend`: pass it to `kms_cache::CacheLayer::observer`.
    pub fn cache_observer(&self, backend: &'static str) -> Arc<dyn CacheObserver> {
        let b = BackendLabels { backend };
        let f = &self.families;
        Arc::new(CacheMetrics {
            hits: f.cache_hits.get_or_create_owned(&b),
            misses: f.cache_misses.get_or_create_owned(&b),
            size: f.cache_size.get_or_create_owned(&b),
        })
    }

    /// A hook for `kms_core::CircuitBreakerLayer::on_state_change` that sets
    /// `<p>_circuit_breaker_state{backend}`; the gauge starts at 0 (closed).
    pub fn circuit_state_recorder(
        &self,
        backend: &'static str,
    ) -> impl Fn(CircuitState) + Send + Sync + 'static {
        let gauge = self
            .families
            .circuit_state
            .get_or_create_owned(&BackendLabels { backend });
        gauge.set(CircuitState::Closed.as_gauge());
        let board = self.families.health.clone();
        board.set_circuit(backend, CircuitState::Closed);
        move |state| {
            gauge.set(state.as_gauge());
            board.set_circuit(backend, state);
        }
    }

    /// The health of every instrumented backend, for a readiness endpoint.
    pub fn health_report(&self) -> HealthReport {
        self.families.health.report()
    }

    /// A [`MetricsLayer`] that instruments stores with these families.
    pub fn layer(&self) -> MetricsLayer {
        MetricsLayer::new(self.clone())
    }

    /// The current `<p>_key_backend_up{backend}` value, if the series exists.
    pub fn backend_up(&self, backend: &'static str) -> Option<bool> {
        self.families
            .backend_up
            .get(&BackendLabels { backend })
            .map(|g| g.get() == 1)
    }

    /// The current `<p>_circuit_breaker_state{backend}` value, if the series exists.
    pub fn circuit_state_gauge(&self, backend: &'static str) -> Option<i64> {
        self.families
            .circuit_state
            .get(&BackendLabels { backend })
            .map(|g| g.get())
    }
}

impl std::fmt::Debug for KmsMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsMetrics").finish_non_exhaustive()
    }
}

/// The pre-resolved series of one `(operation, backend)` pair.
pub(crate) struct OpSeries {
    pub success: ShardedCounter,
    pub failure: ShardedCounter,
    pub duration: LatencyHistogram,
}

impl OpSeries {
    /// Counts one call of `nanos` in this thread's slots.
    #[inline(always)]
    pub(crate) fn observe(&self, ok: bool, nanos: u64) {
        let slot = kms_core::sharded::Slot::current();
        self.duration.observe_ns_in(slot, nanos);
        if ok {
            self.success.inc_in(slot);
        } else {
            self.failure.inc_in(slot);
        }
    }
}

/// One backend's pre-resolved series: the hot path increments atomics, never looks up labels.
pub(crate) struct BackendMetrics {
    pub backend: &'static str,
    /// Indexed by [`op_index`].
    pub ops: [OpSeries; 4],
    pub up: Gauge,
    pub key_age: Gauge,
    families: Arc<Families>,
}

impl BackendMetrics {
    /// Counts a failure by kind (the failure path may look up its label set).
    pub(crate) fn error(&self, op: Operation, kind: ErrorKind) {
        count_error(&self.families, op.as_str(), self.backend, kind);
    }
}

/// One provider's pre-resolved series.
pub(crate) struct ProviderMetrics {
    pub provider: &'static str,
    /// Indexed by [`crypto_index`].
    pub ops: [OpSeries; 3],
    families: Arc<Families>,
}

impl ProviderMetrics {
    /// Counts a failure by kind (the failure path may look up its label set).
    pub(crate) fn error(&self, op: CryptoOperation, kind: ErrorKind) {
        count_error(&self.families, op.as_str(), self.provider, kind);
    }
}

fn count_error(
    families: &Families,
    operation: &'static str,
    backend: &'static str,
    kind: ErrorKind,
) {
    families
        .errors
        .get_or_create(&ErrorLabels {
            operation,
            backend,
            kind: kind.as_str(),
        })
        .inc();
}
