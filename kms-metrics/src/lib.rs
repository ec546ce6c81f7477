#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

// Leaves: vocabulary, tools and reports that import no other file of this crate but leaves.
mod audit;
mod buckets;
mod clock;
pub mod exposition;
mod failure_analysis;
mod health;
mod histogram;
mod key_age;
mod labels;
mod lazy_gauge;
mod operations;
mod sharded;
mod span;
mod stale_age;
mod stale_mark;
mod status;
mod store_name;

// The registry's families, and the series each decorator resolves from them.
mod families;
mod series;

// The decorators, each beside its layer and the `KmsMetrics` factory that makes it.
mod cache_observer;
mod failover_metrics;
mod instrumented;
mod metrics_layer;
mod monitor;
mod monitored;
mod provider;
mod rotation;

pub use audit::AUDIT_TARGET;
pub use buckets::{DURATION_BUCKETS, STALENESS_BUCKETS};
pub use failover_metrics::FailoverMetrics;
pub use failure_analysis::{
    FailureRate, FailureReason, FailureRecorder, FailureRecorderConfig, FailureSummary,
    OperationStatusSummary, ProblematicKey,
};
pub use families::{DEFAULT_PREFIX, KmsMetrics};
pub use health::{BackendHealth, HealthReport, HealthStatus};
pub use instrumented::Instrumented;
pub use metrics_layer::MetricsLayer;
pub use monitor::{
    BackendMonitor, DEFAULT_DOWN_PROBE_INTERVAL, DEFAULT_PROBE_INTERVAL, DEFAULT_PROBE_TIMEOUT,
};
pub use monitored::Monitored;
/// Re-exported so services need no direct dependency to build and encode a registry.
pub use prometheus_client;
pub use provider::InstrumentedProvider;
pub use rotation::RotationMetrics;
pub use store_name::{MAX_STORE_NAME_LEN, MAX_STORE_NAMES, StoreName};
