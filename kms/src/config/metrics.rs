//! `metrics`: Prometheus instrumentation: the service-side layer
//! (`kms_metrics::MetricsLayer`: what callers see) and the backend monitor
//! (`kms_metrics::BackendMonitor`: backend up, backend latency, health probe, key age, circuit
//! state). Where each sits: see [`kms_core::layers`](crate::core::layers).

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
    /// How often the monitor probes while the backend is down (default 1 s; at most
    /// `health_probe`): how soon a recovery is seen.
    #[serde(default, deserialize_with = "duration::opt")]
    pub health_probe_while_down: Option<Duration>,
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

/// The options of [`MetricsConfig`], validated, with the failure recorder built (and where
/// they came from): what [`instruments`](MetricsPlan::instruments) turns into the instruments
/// once the registry and the backend are known. Making it registers nothing.
#[cfg(feature = "metrics")]
pub(crate) struct MetricsPlan {
    options: MetricsConfig,
    at: super::at::At,
    prefix: String,
    store: Option<String>,
    recorder: Option<kms_metrics::FailureRecorder>,
}

#[cfg(feature = "metrics")]
impl MetricsPlan {
    /// The metric name prefix.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The `store` label: the configured name, else the backend label.
    pub(crate) fn label<'a>(&'a self, backend: &'a str) -> &'a str {
        self.store.as_deref().unwrap_or(backend)
    }
}

/// What the stack keeps of its instruments, and what the cache and the envelope provider are
/// observed through.
#[cfg(feature = "metrics")]
pub(crate) struct Instruments {
    /// The metric families (the stack's handle).
    pub(crate) families: kms_metrics::KmsMetrics,
    /// The failure recorder, if configured (the stack's handle).
    pub(crate) recorder: Option<kms_metrics::FailureRecorder>,
    backend: &'static str,
    store: Option<kms_metrics::StoreName>,
    /// Whether the envelope provider's calls are audited too.
    #[cfg(feature = "envelope")]
    audit: bool,
}

#[cfg(feature = "metrics")]
impl MetricsPlan {
    /// Validates `options`; `default_store` is the `store` label when `store` is unset.
    pub(crate) fn new(
        options: &MetricsConfig,
        default_store: Option<&str>,
        at: &super::at::At,
    ) -> kms_core::Result<Self> {
        use crate::error::config_error;

        // The prefix is a metric name's start (Prometheus: `[a-zA-Z_:][a-zA-Z0-9_:]*`).
        let prefix = options
            .prefix
            .clone()
            .unwrap_or_else(|| kms_metrics::DEFAULT_PREFIX.to_owned());
        let valid = !prefix.is_empty()
            && !prefix.starts_with(|c: char| c.is_ascii_digit())
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        if !valid {
            return Err(config_error(
                &at.key("metrics.prefix"),
                format_args!(
                    "invalid metric prefix {prefix:?}: expected letters, digits, `_` or `:`, not starting with a digit"
                ),
            ));
        }
        if let Some(Some(probe)) = options.health_probe
            && probe.is_zero()
        {
            return Err(config_error(
                &at.key("metrics.health_probe"),
                "invalid duration 0s: expected more than zero or \"off\"",
            ));
        }
        for (key, value) in [
            ("health_probe_while_down", options.health_probe_while_down),
            ("probe_timeout", options.probe_timeout),
            ("key_age_window", options.key_age_window),
        ] {
            if value.is_some_and(|d| d.is_zero()) {
                return Err(config_error(
                    &at.key(&format!("metrics.{key}")),
                    "invalid duration 0s: expected more than zero",
                ));
            }
        }
        let recorder = match &options.failure_recorder {
            Some(fr) if fr.enabled != Some(false) => {
                Some(kms_metrics::FailureRecorder::new(fr.recorder_config(at)?))
            }
            _ => None,
        };
        Ok(Self {
            store: options.store.clone().or(default_store.map(str::to_owned)),
            options: options.clone(),
            at: at.clone(),
            prefix,
            recorder,
        })
    }

    /// The service-side layer, the backend monitor and the rest of the instruments, their
    /// families taken from (registered in) `registry`, their series labelled with `backend`
    /// and the store label, which `identity` (the backend's, see `BackendPlan::identity`)
    /// claims in the registry.
    ///
    /// # Errors
    ///
    /// `metrics.store` when the registry refuses the store name (not a valid label value, or
    /// one distinct name too many), or when another store with a different identity holds
    /// the same label set in this registry.
    pub(crate) fn instruments(
        self,
        registry: &crate::MetricsRegistry,
        backend: &'static str,
        identity: &str,
    ) -> kms_core::Result<(
        kms_metrics::MetricsLayer,
        kms_metrics::BackendMonitor,
        Instruments,
    )> {
        let at = &self.at;
        // Without a name, kms-metrics labels the series with the backend label.
        let label = self.store.as_deref().unwrap_or(backend);
        if !registry.claim(&self.prefix, backend, label, identity) {
            let how = if self.options.store.is_some() {
                "give this store another `metrics.store`"
            } else {
                "give one of them a `metrics.store` of its own"
            };
            return Err(crate::error::config_error(
                &at.key("metrics.store"),
                format_args!(
                    "the label set {{backend=\"{backend}\", store=\"{label}\"}} of metrics \
                     prefix `{}` is already used in this registry by a store with other \
                     backend options, and their series would merge: {how}",
                    self.prefix
                ),
            ));
        }
        let families = registry.families(&self.prefix);
        let store = match self.store.as_deref() {
            Some(name) => Some(
                families
                    .store_name(name)
                    .map_err(|e| crate::error::while_applying(&at.key("metrics.store"), e))?,
            ),
            None => None,
        };
        let o = &self.options;
        let mut layer = families.layer();
        let mut monitor = families.backend_monitor();
        if let Some(name) = &store {
            layer = layer.store(name.clone());
            monitor = monitor.store(name.clone());
        }
        if let Some(on) = o.audit {
            layer = layer.audit(on);
        }
        if let Some(probe) = o.health_probe {
            monitor = monitor.probe_interval(probe);
        }
        if let Some(probe) = o.health_probe_while_down {
            monitor = monitor.probe_interval_while_down(probe);
        }
        if let Some(t) = o.probe_timeout {
            monitor = monitor.probe_timeout(t);
        }
        if let Some(w) = o.key_age_window {
            monitor = monitor.key_age_window(w);
        }
        if let Some(n) = o.max_tracked_keys {
            monitor = monitor.max_tracked_keys(n);
        }
        if let Some(r) = &self.recorder {
            layer = layer.failure_recorder(r.clone());
        }
        let instruments = Instruments {
            families,
            recorder: self.recorder,
            backend,
            store,
            // `metrics.audit` covers the envelope provider's calls too.
            #[cfg(feature = "envelope")]
            audit: o.audit.unwrap_or(true),
        };
        Ok((layer, monitor, instruments))
    }
}

#[cfg(feature = "metrics")]
impl Instruments {
    /// The observer feeding the cache series of this store.
    pub(crate) fn cache_observer(&self) -> std::sync::Arc<dyn kms_cache::CacheObserver> {
        self.families
            .cache_observer_for(self.backend, self.store.as_ref())
    }

    /// `provider`, instrumented (and audited unless `metrics.audit` is off).
    #[cfg(feature = "envelope")]
    pub(crate) fn instrument_provider(
        &self,
        provider: std::sync::Arc<dyn kms_core::CryptoProvider>,
    ) -> std::sync::Arc<dyn kms_core::CryptoProvider> {
        std::sync::Arc::new(
            self.families
                .instrument_provider(provider)
                .audit(self.audit),
        )
    }
}

#[cfg(feature = "metrics")]
impl FailureRecorderConfig {
    /// kms-metrics' recorder settings, validated.
    fn recorder_config(
        &self,
        at: &super::at::At,
    ) -> kms_core::Result<kms_metrics::FailureRecorderConfig> {
        use crate::error::config_error;

        let key = |k: &str| at.key(&format!("metrics.failure_recorder.{k}"));
        let mut c = kms_metrics::FailureRecorderConfig::default();
        if let Some(w) = self.window {
            c.window = w;
        }
        if let Some(n) = self.max_records {
            if n == 0 {
                return Err(config_error(
                    &key("max_records"),
                    "invalid value 0: expected at least 1",
                ));
            }
            c.max_records = n;
        }
        if let Some(n) = self.queue {
            c.queue = n;
        }
        if let Some(n) = self.min_operations {
            c.min_operations = n;
        }
        if let Some(r) = self.failure_rate_threshold_percent {
            if !(0.0..=100.0).contains(&r) {
                return Err(config_error(
                    &key("failure_rate_threshold_percent"),
                    format_args!("invalid value {r}: expected a percentage from 0 to 100"),
                ));
            }
            c.failure_rate_threshold_percent = r;
        }
        if let Some(ops) = &self.problematic_operations {
            c.problematic_operations = ops
                .iter()
                .filter_map(|op| OPERATIONS.iter().find(|o| **o == op.as_str()).copied())
                .collect();
        }
        if let Some(n) = self.top_failures {
            c.top_failures = n;
        }
        Ok(c)
    }
}
