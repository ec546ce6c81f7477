#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod buckets;
mod cache_observer;
mod clock;
pub mod exposition;
mod failure_analysis;
mod families;
mod health;
mod histogram;
mod instrumented;
mod key_age;
mod labels;
mod monitor;
mod provider;
mod retries;
mod sharded;
mod status;
mod store_name;

pub use buckets::DURATION_BUCKETS;
pub use failure_analysis::{
    FailureRate, FailureReason, FailureRecorder, FailureRecorderConfig, FailureSummary,
    OperationStatusSummary, ProblematicKey,
};
pub use families::{DEFAULT_PREFIX, KmsMetrics};
pub use health::{BackendHealth, HealthReport, HealthStatus};
pub use instrumented::{AUDIT_TARGET, Instrumented, MetricsLayer};
pub use monitor::{BackendMonitor, DEFAULT_PROBE_INTERVAL, DEFAULT_PROBE_TIMEOUT, Monitored};
/// Re-exported so services need no direct dependency to build and encode a registry.
pub use prometheus_client;
pub use provider::InstrumentedProvider;
pub use retries::Retries;
pub use store_name::{MAX_STORE_NAME_LEN, MAX_STORE_NAMES, StoreName};
