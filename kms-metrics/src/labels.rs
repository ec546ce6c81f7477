//! Label sets. Every value is a bounded, static string: backend, operation, status, error kind,
//! never a key name or a value.

use prometheus_client::encoding::EncodeLabelSet;

/// `{operation, backend, status}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OperationLabels {
    pub operation: &'static str,
    pub backend: &'static str,
    pub status: &'static str,
}

/// `{operation, backend, kind}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ErrorLabels {
    pub operation: &'static str,
    pub backend: &'static str,
    pub kind: &'static str,
}

/// `{operation, backend}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DurationLabels {
    pub operation: &'static str,
    pub backend: &'static str,
}

/// `{backend}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct BackendLabels {
    pub backend: &'static str,
}
