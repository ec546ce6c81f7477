//! [`MetricsLayer`]: the layer of the service-side decorator [`Instrumented`], and
//! [`KmsMetrics::layer`], which makes it.

use std::sync::Arc;
use std::time::Duration;

use kms_core::{KeyStore, Layer};

use crate::failure_analysis::FailureRecorder;
use crate::families::KmsMetrics;
use crate::instrumented::Instrumented;
use crate::store_name::StoreName;

impl KmsMetrics {
    /// A [`MetricsLayer`]: the service-side instrumentation (outermost in the stack).
    pub fn layer(&self) -> MetricsLayer {
        MetricsLayer::new(self.clone())
    }
}

/// Configuration of the service-side instrumentation decorator; a [`Layer`]. Get one from
/// [`KmsMetrics::layer`] and put it outermost (why: [`kms_core::layers`]). What the backend
/// itself does (`backend_up`, backend latency, the health probe, key age) is the
/// [`BackendMonitor`](crate::BackendMonitor)'s.
#[derive(Clone, Debug)]
pub struct MetricsLayer {
    metrics: KmsMetrics,
    store: Option<StoreName>,
    audit: bool,
    recorder: Option<FailureRecorder>,
}

impl MetricsLayer {
    fn new(metrics: KmsMetrics) -> Self {
        Self {
            metrics,
            store: None,
            audit: true,
            recorder: None,
        }
    }

    /// The `store` label (default: the backend label); see [`StoreName`].
    #[must_use]
    pub fn store(mut self, name: StoreName) -> Self {
        self.store = Some(name);
        self
    }

    /// Has no effect; kept so that existing callers build. This layer used to probe the store
    /// below it, which is the cache and the breaker, not the backend: the probe now belongs to
    /// [`BackendMonitor::probe_interval`](crate::BackendMonitor::probe_interval).
    #[must_use]
    pub fn health_probe(self, interval: Option<Duration>) -> Self {
        let _ = interval;
        self
    }

    /// Whether to emit audit events on target [`AUDIT_TARGET`](crate::AUDIT_TARGET) (default on).
    #[must_use]
    pub fn audit(mut self, on: bool) -> Self {
        self.audit = on;
        self
    }

    /// Also record every operation in `recorder` (failure analysis). Off by default.
    #[must_use]
    pub fn failure_recorder(mut self, recorder: FailureRecorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Wraps `inner` directly.
    pub fn wrap<S: KeyStore>(&self, inner: S) -> Instrumented<S> {
        Instrumented::new(
            inner,
            &self.metrics,
            self.store.as_ref(),
            self.audit,
            self.recorder.clone(),
        )
    }
}

impl Layer for MetricsLayer {
    fn layer(&self, inner: Arc<dyn KeyStore>) -> Arc<dyn KeyStore> {
        Arc::new(self.wrap(inner))
    }
}
