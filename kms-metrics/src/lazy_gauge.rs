//! [`LazyGauge`]: a `{backend, store}` gauge whose series appears at its first value.

use std::sync::OnceLock;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::labels::BackendLabels;

/// A gauge whose series appears at its first [`set`](Self::set): `<p>_key_backend_up` has no
/// sample until a probe or a backend call has said something, rather than a made-up 0 or 1.
pub(crate) struct LazyGauge {
    family: Family<BackendLabels, Gauge>,
    labels: BackendLabels,
    gauge: OnceLock<Gauge>,
}

impl LazyGauge {
    /// The gauge of `labels` in `family`, not created yet.
    pub(crate) fn new(family: &Family<BackendLabels, Gauge>, labels: BackendLabels) -> Self {
        Self {
            family: family.clone(),
            labels,
            gauge: OnceLock::new(),
        }
    }

    /// Sets the value, creating the series if needed.
    pub(crate) fn set(&self, value: i64) {
        self.gauge
            .get_or_init(|| self.family.get_or_create_owned(&self.labels))
            .set(value);
    }
}
