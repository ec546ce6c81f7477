//! Label sets. Every value is bounded: backend, operation, status, error kind and cause are
//! static strings; `store` is a [`StoreName`](crate::StoreName) the service chose and
//! registered (at most [`MAX_STORE_NAMES`](crate::MAX_STORE_NAMES) per `KmsMetrics`). Never a
//! key name or a value.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;

/// `{operation, backend, store, status}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OperationLabels {
    pub operation: &'static str,
    pub backend: &'static str,
    pub store: Arc<str>,
    pub status: &'static str,
}

/// `{operation, backend, store, kind}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ErrorLabels {
    pub operation: &'static str,
    pub backend: &'static str,
    pub store: Arc<str>,
    pub kind: &'static str,
}

/// `{operation, backend, store}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DurationLabels {
    pub operation: &'static str,
    pub backend: &'static str,
    pub store: Arc<str>,
}

/// `{backend, store}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct BackendLabels {
    pub backend: &'static str,
    pub store: Arc<str>,
}

/// `{backend, store, cause}` (cache evictions).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct EvictionLabels {
    pub backend: &'static str,
    pub store: Arc<str>,
    pub cause: &'static str,
}

/// `{backend, store, outcome}` (reports of credentials refused downstream, by what the
/// cache did: `kms_cache::Rejection::as_str`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RejectionLabels {
    pub backend: &'static str,
    pub store: Arc<str>,
    pub outcome: &'static str,
}

/// `{backend, store, status}` (cache loads).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LoadLabels {
    pub backend: &'static str,
    pub store: Arc<str>,
    pub status: &'static str,
}

/// `{backend, store, status}` (rotations: success, conflict, failure).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RotationLabels {
    pub backend: &'static str,
    pub store: Arc<str>,
    pub status: &'static str,
}
