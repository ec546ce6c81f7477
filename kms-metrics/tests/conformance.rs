//! The conformance suite over the instrumentation decorators: the service-side `Instrumented`
//! and the backend-side `Monitored` (with and without its health probe running).

use kms_core::{MemoryStore, StoreBuilder};
use kms_metrics::KmsMetrics;
use kms_metrics::prometheus_client::registry::Registry;

fn instrumented(probe: bool) -> std::sync::Arc<dyn kms_core::KeyStore> {
    let metrics = KmsMetrics::register(&mut Registry::default());
    let interval = probe.then(|| std::time::Duration::from_millis(50));
    StoreBuilder::new(MemoryStore::new())
        .layer(metrics.layer())
        .layer(metrics.backend_monitor().probe_interval(interval))
        .build()
}

mod with_probe {
    use super::*;
    kms_core::conformance_tests!(instrumented(true));
}

mod without_probe {
    use super::*;
    kms_core::conformance_tests!(instrumented(false));
}
