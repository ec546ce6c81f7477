//! `metrics`: Prometheus instrumentation: the service-side layer
//! (`kms_metrics::MetricsLayer`, outermost) and the backend monitor
//! (`kms_metrics::BackendMonitor`, just above the timeout: backend up, backend latency,
//! health probe, key age, circuit state).

use std::time::Duration;

use serde::Deserialize;

use crate::{duration, scalar};

/// `[stores.NAME.metrics]` / `metrics.*`. Maps onto `kms_metrics::KmsMetrics`,
/// `kms_metrics::MetricsLayer` and `kms_metrics::BackendMonitor`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Whether the layer is on (default true once the table exists).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub enabled: Option<bool>,
    /// The metric name prefix (default `kms`); stores with the same prefix share families.
    pub prefix: Option<String>,
    /// The `store` label (default: the store's name in a file, the backend label for a URI).
    pub store: Option<String>,
    /// Emit audit events on target `kms::audit` (default true), for the store and the envelope
    /// provider.
    #[serde(default, deserialize_with = "scalar::opt")]
    pub audit: Option<bool>,
    /// How often the monitor probes the backend's `health`, or `"off"` (default 15 s).
    #[serde(default, deserialize_with = "duration::opt_or_off")]
    pub health_probe: Option<Option<Duration>>,
    /// The longest one probe may take (default 5 s).
    #[serde(default, deserialize_with = "duration::opt")]
    pub probe_timeout: Option<Duration>,
    /// Keys not returned or written for this long leave `<prefix>_key_age_seconds` (default
    /// 1 h).
    #[serde(default, deserialize_with = "duration::opt")]
    pub key_age_window: Option<Duration>,
    /// The most keys `<prefix>_key_age_seconds` tracks (default 10,000).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub max_tracked_keys: Option<usize>,
    /// Record every operation for failure analysis (off unless this table is given).
    pub failure_recorder: Option<FailureRecorderConfig>,
}

/// `metrics.failure_recorder.*`: maps onto `kms_metrics::FailureRecorderConfig`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureRecorderConfig {
    /// Whether recording is on (default true once the table exists).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub enabled: Option<bool>,
    /// The longest timeframe a summary covers (default 24 h).
    #[serde(default, deserialize_with = "duration::opt")]
    pub window: Option<Duration>,
    /// The most records kept (default 100,000).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub max_records: Option<usize>,
    /// Records waiting between two summaries (default 8,192).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub queue: Option<usize>,
    /// A key is problematic with at least this many operations (default 5) …
    #[serde(default, deserialize_with = "scalar::opt")]
    pub min_operations: Option<u64>,
    /// … of which at least this percentage failed (default 10).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub failure_rate_threshold_percent: Option<f64>,
    /// The operations problematic keys are judged on (default `["decrypt"]`; a list, or
    /// comma-separated text).
    #[serde(default, deserialize_with = "operations")]
    pub problematic_operations: Option<Vec<String>>,
    /// How many top failures a summary lists (default 10).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub top_failures: Option<usize>,
}

/// The operation names the failure recorder knows.
const OPERATIONS: [&str; 8] = [
    "get",
    "store",
    "remove",
    "list",
    "health",
    "encrypt",
    "decrypt",
    "generate_data_key",
];

fn operations<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TextOrList {
        Text(String),
        List(Vec<String>),
    }
    let list = match TextOrList::deserialize(d).map_err(|_| {
        serde::de::Error::custom(
            "invalid value: expected a list of operation names or comma-separated text",
        )
    })? {
        TextOrList::Text(t) => t.split(',').map(|s| s.trim().to_owned()).collect(),
        TextOrList::List(l) => l,
    };
    for op in &list {
        if !OPERATIONS.contains(&op.as_str()) {
            return Err(serde::de::Error::custom(format_args!(
                "unknown operation {op:?}: expected any of {}",
                OPERATIONS.map(|o| format!("`{o}`")).join(", ")
            )));
        }
    }
    Ok(Some(list))
}

#[cfg(feature = "metrics")]
impl MetricsConfig {
    /// The metric name prefix, validated (Prometheus: `[a-zA-Z_:][a-zA-Z0-9_:]*`).
    pub(crate) fn prefix(&self, at: &super::At) -> kms_core::Result<String> {
        let prefix = self
            .prefix
            .clone()
            .unwrap_or_else(|| kms_metrics::DEFAULT_PREFIX.to_owned());
        let valid = !prefix.is_empty()
            && !prefix.starts_with(|c: char| c.is_ascii_digit())
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        if valid {
            Ok(prefix)
        } else {
            Err(crate::error::config_error(
                &at.key("metrics.prefix"),
                format_args!(
                    "invalid metric prefix {prefix:?}: expected letters, digits, `_` or `:`, not starting with a digit"
                ),
            ))
        }
    }

    /// The service-side layer, the backend monitor and the failure recorder, validated.
    /// `default_store` is the `store` label when `store` is unset.
    pub(crate) fn layers(
        &self,
        metrics: &kms_metrics::KmsMetrics,
        default_store: Option<&str>,
        at: &super::At,
    ) -> kms_core::Result<(
        kms_metrics::MetricsLayer,
        kms_metrics::BackendMonitor,
        Option<kms_metrics::FailureRecorder>,
    )> {
        use crate::error::{config_error, while_applying};

        let mut layer = metrics.layer();
        let mut monitor = metrics.backend_monitor();
        if let Some(name) = self.store.as_deref().or(default_store) {
            let name = metrics
                .store_name(name)
                .map_err(|e| while_applying(&at.key("metrics.store"), e))?;
            layer = layer.store(name.clone());
            monitor = monitor.store(name);
        }
        if let Some(on) = self.audit {
            layer = layer.audit(on);
        }
        if let Some(probe) = self.health_probe {
            if probe.is_some_and(|d| d.is_zero()) {
                return Err(config_error(
                    &at.key("metrics.health_probe"),
                    "invalid duration 0s: expected more than zero or \"off\"",
                ));
            }
            monitor = monitor.probe_interval(probe);
        }
        if let Some(t) = self.probe_timeout {
            if t.is_zero() {
                return Err(config_error(
                    &at.key("metrics.probe_timeout"),
                    "invalid duration 0s: expected more than zero",
                ));
            }
            monitor = monitor.probe_timeout(t);
        }
        if let Some(w) = self.key_age_window {
            if w.is_zero() {
                return Err(config_error(
                    &at.key("metrics.key_age_window"),
                    "invalid duration 0s: expected more than zero",
                ));
            }
            monitor = monitor.key_age_window(w);
        }
        if let Some(n) = self.max_tracked_keys {
            monitor = monitor.max_tracked_keys(n);
        }
        let mut recorder = None;
        if let Some(fr) = &self.failure_recorder
            && fr.enabled != Some(false)
        {
            let key = |k: &str| at.key(&format!("metrics.failure_recorder.{k}"));
            let mut c = kms_metrics::FailureRecorderConfig::default();
            if let Some(w) = fr.window {
                c.window = w;
            }
            if let Some(n) = fr.max_records {
                if n == 0 {
                    return Err(config_error(
                        &key("max_records"),
                        "invalid value 0: expected at least 1",
                    ));
                }
                c.max_records = n;
            }
            if let Some(n) = fr.queue {
                c.queue = n;
            }
            if let Some(n) = fr.min_operations {
                c.min_operations = n;
            }
            if let Some(r) = fr.failure_rate_threshold_percent {
                if !(0.0..=100.0).contains(&r) {
                    return Err(config_error(
                        &key("failure_rate_threshold_percent"),
                        format_args!("invalid value {r}: expected a percentage from 0 to 100"),
                    ));
                }
                c.failure_rate_threshold_percent = r;
            }
            if let Some(ops) = &fr.problematic_operations {
                c.problematic_operations = ops
                    .iter()
                    .filter_map(|op| OPERATIONS.iter().find(|o| **o == op.as_str()).copied())
                    .collect();
            }
            if let Some(n) = fr.top_failures {
                c.top_failures = n;
            }
            let r = kms_metrics::FailureRecorder::new(c);
            layer = layer.failure_recorder(r.clone());
            recorder = Some(r);
        }
        Ok((layer, monitor, recorder))
    }
}
