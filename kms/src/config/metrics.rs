//! `metrics`: Prometheus instrumentation (`kms_metrics::MetricsLayer`).

use std::time::Duration;

use serde::Deserialize;

use crate::{duration, scalar};

/// `[stores.NAME.metrics]` / `metrics.*`: instruments the stack (outermost) and feeds the
/// cache and breaker series. Maps onto `kms_metrics::KmsMetrics::register_with_prefix` and
/// `kms_metrics::MetricsLayer`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Whether the layer is on (default true once the table exists).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub enabled: Option<bool>,
    /// The metric name prefix (default `kms`); stores with the same prefix share families.
    pub prefix: Option<String>,
    /// How often the background probe calls `health`, or `"off"` (default 15 s).
    #[serde(default, deserialize_with = "duration::opt_or_off")]
    pub health_probe: Option<Option<Duration>>,
    /// Emit audit events on target `kms::audit` (default true).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub audit: Option<bool>,
    /// The window of `<prefix>_key_age_seconds` (default 1 h).
    #[serde(default, deserialize_with = "duration::opt")]
    pub key_age_window: Option<Duration>,
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
    /// How far back the summary looks (default 24 h).
    #[serde(default, deserialize_with = "duration::opt")]
    pub window: Option<Duration>,
    /// The most records kept (default 100,000).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub max_records: Option<usize>,
    /// A key is problematic with at least this many operations (default 5) …
    #[serde(default, deserialize_with = "scalar::opt")]
    pub min_operations: Option<u64>,
    /// … and a failure rate at or above this (default 0.5).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub failure_rate_threshold: Option<f64>,
    /// How many top failure reasons the summary lists (default 10).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub top_reasons: Option<usize>,
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

    /// The layer over `metrics`, validated; also the failure recorder it feeds, if any.
    pub(crate) fn layer(
        &self,
        metrics: &kms_metrics::KmsMetrics,
        at: &super::At,
    ) -> kms_core::Result<(
        kms_metrics::MetricsLayer,
        Option<kms_metrics::FailureRecorder>,
    )> {
        use crate::error::config_error;

        let mut layer = metrics.layer();
        if let Some(probe) = self.health_probe {
            if probe.is_some_and(|d| d.is_zero()) {
                return Err(config_error(
                    &at.key("metrics.health_probe"),
                    "invalid duration 0s: expected more than zero or \"off\"",
                ));
            }
            layer = layer.health_probe(probe);
        }
        if let Some(on) = self.audit {
            layer = layer.audit(on);
        }
        if let Some(w) = self.key_age_window {
            if w.is_zero() {
                return Err(config_error(
                    &at.key("metrics.key_age_window"),
                    "invalid duration 0s: expected more than zero",
                ));
            }
            layer = layer.key_age_window(w);
        }
        let mut recorder = None;
        if let Some(fr) = &self.failure_recorder
            && fr.enabled != Some(false)
        {
            let mut c = kms_metrics::FailureRecorderConfig::default();
            if let Some(w) = fr.window {
                c.window = w;
            }
            if let Some(n) = fr.max_records {
                if n == 0 {
                    return Err(config_error(
                        &at.key("metrics.failure_recorder.max_records"),
                        "invalid value 0: expected at least 1",
                    ));
                }
                c.max_records = n;
            }
            if let Some(n) = fr.min_operations {
                c.min_operations = n;
            }
            if let Some(r) = fr.failure_rate_threshold {
                if !(0.0..=1.0).contains(&r) {
                    return Err(config_error(
                        &at.key("metrics.failure_recorder.failure_rate_threshold"),
                        format_args!("invalid value {r}: expected a fraction from 0.0 to 1.0"),
                    ));
                }
                c.failure_rate_threshold = r;
            }
            if let Some(n) = fr.top_reasons {
                c.top_reasons = n;
            }
            let r = kms_metrics::FailureRecorder::new(c);
            layer = layer.failure_recorder(r.clone());
            recorder = Some(r);
        }
        Ok((layer, recorder))
    }
}
