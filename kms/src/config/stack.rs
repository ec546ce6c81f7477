//! [`Stack`]: a built store and handles on its layers.

use std::fmt;
use std::sync::Arc;

use kms_core::{CircuitBreakerHandle, FailoverHandle, KeyStore};

/// A built store and handles on its layers, made by an [`Opener`](crate::Opener).
///
/// The layers are stacked in one order: see [`kms_core::layers`](crate::core::layers) for the order and why.
pub struct Stack {
    pub(crate) store: Arc<dyn KeyStore>,
    pub(crate) breaker: Option<CircuitBreakerHandle>,
    pub(crate) failover: Option<FailoverHandle>,
    #[cfg(feature = "cache")]
    pub(crate) cache: Option<kms_cache::CacheHandle>,
    #[cfg(feature = "metrics")]
    pub(crate) metrics: Option<kms_metrics::KmsMetrics>,
    #[cfg(feature = "metrics")]
    pub(crate) failure_recorder: Option<kms_metrics::FailureRecorder>,
    /// The registry the metrics went to, when `metrics` is configured.
    #[cfg(feature = "metrics")]
    pub(crate) registry: Option<crate::MetricsRegistry>,
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("store", &format_args!("{}", self.store))
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.store, f)
    }
}

impl Stack {
    /// The store (the outermost layer).
    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.store
    }

    /// The store, dropping the handles.
    pub fn into_store(self) -> Arc<dyn KeyStore> {
        self.store
    }

    /// The circuit breaker's state, if `breaker` is configured.
    pub fn breaker(&self) -> Option<&CircuitBreakerHandle> {
        self.breaker.as_ref()
    }

    /// Which store serves reads and how often it switched, if `failover` is configured.
    pub fn failover(&self) -> Option<&FailoverHandle> {
        self.failover.as_ref()
    }

    /// The cache (invalidate, stats), if `cache` is configured.
    #[cfg(feature = "cache")]
    pub fn cache(&self) -> Option<&kms_cache::CacheHandle> {
        self.cache.as_ref()
    }

    /// The metric families (health report, gauges), if `metrics` is configured.
    #[cfg(feature = "metrics")]
    pub fn metrics(&self) -> Option<&kms_metrics::KmsMetrics> {
        self.metrics.as_ref()
    }

    /// The health report for a readiness endpoint, if `metrics` is configured: the state the
    /// backend monitor keeps (its periodic `health` probe, `metrics.health_probe`, and every
    /// backend call) for this store and every other store sharing its `metrics.prefix` in the
    /// registry. Serve [`HealthReport::to_json`](kms_metrics::HealthReport::to_json) with 200
    /// when [`is_ready`](kms_metrics::HealthReport::is_ready), else 503. No I/O: a readiness
    /// probe never waits on the backend.
    #[cfg(feature = "metrics")]
    pub fn health_report(&self) -> Option<kms_metrics::HealthReport> {
        self.metrics
            .as_ref()
            .map(kms_metrics::KmsMetrics::health_report)
    }

    /// The OpenMetrics text of the registry this store's metrics went to (every family in
    /// it, the service's own included), for `/metrics`, if `metrics` is configured. For
    /// content negotiation (Prometheus text 0.0.4), use
    /// [`MetricsRegistry::with_registry`](crate::MetricsRegistry::with_registry) with
    /// `kms::metrics::exposition::encode_for`.
    #[cfg(feature = "metrics")]
    pub fn metrics_text(&self) -> Option<String> {
        self.registry.as_ref().map(crate::MetricsRegistry::encode)
    }

    /// The registry this store's metrics went to, if `metrics` is configured.
    #[cfg(feature = "metrics")]
    pub fn metrics_registry(&self) -> Option<&crate::MetricsRegistry> {
        self.registry.as_ref()
    }

    /// The failure recorder, if `metrics.failure_recorder` is configured.
    #[cfg(feature = "metrics")]
    pub fn failure_recorder(&self) -> Option<&kms_metrics::FailureRecorder> {
        self.failure_recorder.as_ref()
    }
}
