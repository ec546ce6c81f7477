//! [`Opener`] builds a [`StoreConfig`] into a [`Stack`]: the backend, then the layers in the
//! recommended order.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use kms_core::{CircuitBreakerHandle, KeyStore, Result, StoreBuilder};

use super::envelope::Shared;
use super::{At, Config, StoreConfig};
use crate::error::config_error;

/// A built store and handles on its layers.
///
/// The layers are stacked, outermost first:
///
/// ```text
/// metrics → validate → cache → envelope → breaker → retry → monitor → timeout → backend
/// ```
///
/// (`monitor`, kms-metrics' backend monitor, is there when `metrics` is configured.)
///
/// Metrics see what the service sees (cache hits included); validation rejects oversized
/// values before anything else spends work on them; the cache answers hot keys with plaintext
/// (no decrypt per hit); the envelope encrypts before a value leaves the process and decrypts
/// what comes back; the breaker counts one logical call once however many attempts it took;
/// the backend monitor sees each attempt that reached the backend (and probes it directly);
/// each attempt is bounded by the timeout (kms-core's `StoreBuilder::resilience` order).
pub struct Stack {
    store: Arc<dyn KeyStore>,
    breaker: Option<CircuitBreakerHandle>,
    #[cfg(feature = "cache")]
    cache: Option<kms_cache::CacheHandle>,
    #[cfg(feature = "metrics")]
    metrics: Option<kms_metrics::KmsMetrics>,
    #[cfg(feature = "metrics")]
    failure_recorder: Option<kms_metrics::FailureRecorder>,
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("store", &format_args!("{}", self.store))
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.store, f)
    }
}

impl Stack {
    /// The store (the outermost layer).
    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.store
    }

    /// The store, dropping the handles.
    pub fn into_store(self) -> Arc<dyn KeyStore> {
        self.store
    }

    /// The circuit breaker's state, if `breaker` is configured.
    pub fn breaker(&self) -> Option<&CircuitBreakerHandle> {
        self.breaker.as_ref()
    }

    /// The cache (invalidate, stats), if `cache` is configured.
    #[cfg(feature = "cache")]
    pub fn cache(&self) -> Option<&kms_cache::CacheHandle> {
        self.cache.as_ref()
    }

    /// The metric families (health report, gauges), if `metrics` is configured.
    #[cfg(feature = "metrics")]
    pub fn metrics(&self) -> Option<&kms_metrics::KmsMetrics> {
        self.metrics.as_ref()
    }

    /// The failure recorder, if `metrics.failure_recorder` is configured.
    #[cfg(feature = "metrics")]
    pub fn failure_recorder(&self) -> Option<&kms_metrics::FailureRecorder> {
        self.failure_recorder.as_ref()
    }
}

/// Opens stores from URIs and configurations, registering metrics in one
/// [`MetricsRegistry`](crate::MetricsRegistry) ([`global`](crate::MetricsRegistry::global)
/// unless [`metrics_registry`](Self::metrics_registry) says otherwise).
#[derive(Clone, Debug, Default)]
pub struct Opener {
    #[cfg(feature = "metrics")]
    registry: Option<crate::MetricsRegistry>,
}

impl Opener {
    /// An opener using the global metrics registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers metrics in `registry` instead of the global one.
    #[cfg(feature = "metrics")]
    #[must_use]
    pub fn metrics_registry(mut self, registry: crate::MetricsRegistry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Opens the store a URI describes.
    ///
    /// # Errors
    ///
    /// As [`crate::open`].
    pub async fn open(&self, uri: &str) -> Result<Stack> {
        let (table, backend) = crate::uri::to_table(uri)?;
        let at = At::uri(backend);
        let config = StoreConfig::from_table(table, &at)?;
        self.build_store(&config, &at).await
    }

    /// Builds the store `name` of `config`.
    ///
    /// # Errors
    ///
    /// As [`Config::open`].
    pub async fn open_named(&self, config: &Config, name: &str) -> Result<Stack> {
        let store = config.require(name)?;
        self.build_store(store, &At::store(name)).await
    }

    /// Builds the default store of `config`.
    ///
    /// # Errors
    ///
    /// As [`Config::open_default`].
    pub async fn open_default(&self, config: &Config) -> Result<Stack> {
        let name = config.require_default()?.to_owned();
        self.open_named(config, &name).await
    }

    /// Builds a store given as a typed value (errors name keys as `stores.<name>.…`).
    ///
    /// # Errors
    ///
    /// As [`Config::open`].
    pub async fn open_config(&self, name: &str, config: &StoreConfig) -> Result<Stack> {
        self.build_store(config, &At::store(name)).await
    }

    /// Builds every store of `config`.
    ///
    /// # Errors
    ///
    /// As [`Config::build`].
    pub async fn build(&self, config: &Config) -> Result<BTreeMap<String, Stack>> {
        let mut out = BTreeMap::new();
        for name in config.store_names() {
            out.insert(name.to_owned(), self.open_named(config, name).await?);
        }
        Ok(out)
    }

    async fn build_store(&self, c: &StoreConfig, at: &At) -> Result<Stack> {
        let on = |enabled: Option<bool>| enabled != Some(false);
        // Layers are validated before the backend is reached, so a typo never costs a login.
        let validate = match &c.validate {
            Some(v) if on(v.enabled) => Some(v.layer(at)?),
            _ => None,
        };
        let breaker = match &c.breaker {
            Some(b) if on(b.enabled) => Some(b.layer(at)?),
            _ => None,
        };
        let retry = match &c.retry {
            Some(r) if on(r.enabled) => Some(r.layer(at)?),
            _ => None,
        };
        let timeout = match &c.timeout {
            Some(t) if on(t.enabled) => Some(t.layer(at)?),
            _ => None,
        };
        let cache_config = c.cache.as_ref().filter(|x| on(x.enabled));
        let metrics_config = c.metrics.as_ref().filter(|x| on(x.enabled));
        let envelope_config = c.envelope.as_ref().filter(|x| on(x.enabled));
        #[cfg(feature = "cache")]
        let cache_layer = cache_config.map(|x| x.layer(at)).transpose()?;
        #[cfg(not(feature = "cache"))]
        if cache_config.is_some() {
            return Err(not_compiled(at, "cache", "cache"));
        }
        #[cfg(feature = "metrics")]
        let metrics_prefix = metrics_config.map(|m| m.prefix(at)).transpose()?;
        #[cfg(not(feature = "metrics"))]
        if metrics_config.is_some() {
            return Err(not_compiled(at, "metrics", "metrics"));
        }
        #[cfg(not(feature = "envelope"))]
        if envelope_config.is_some() {
            return Err(not_compiled(at, "envelope", "envelope"));
        }

        let (backend, shared) = self.backend(c, at).await?;
        let label = backend.backend();
        let mut builder = StoreBuilder::from_arc(backend);

        #[cfg(feature = "metrics")]
        let (metrics, monitor, failure_recorder) = match (metrics_config, metrics_prefix) {
            (Some(m), Some(prefix)) => {
                let families = self
                    .registry
                    .clone()
                    .unwrap_or_else(|| crate::MetricsRegistry::global().clone())
                    .families(&prefix);
                let (layer, monitor, recorder) = m.layers(&families, at.store_name(), at)?;
                builder = builder.layer(layer);
                (Some(families), Some(monitor), recorder)
            }
            _ => (None, None, None),
        };
        builder = builder.option_layer(validate);
        #[cfg(feature = "cache")]
        let cache = match cache_layer {
            Some(layer) => {
                #[cfg(feature = "metrics")]
                let layer = match &metrics {
                    Some(m) => {
                        let store = match metrics_config
                            .and_then(|c| c.store.as_deref())
                            .or(at.store_name())
                        {
                            Some(name) => Some(m.store_name(name).map_err(|e| {
                                crate::error::while_applying(&at.key("metrics.store"), e)
                            })?),
                            None => None,
                        };
                        layer.observer(m.cache_observer_for(label, store.as_ref()))
                    }
                    None => layer,
                };
                let handle = layer.handle();
                builder = builder.layer(layer);
                Some(handle)
            }
            None => None,
        };
        #[cfg(feature = "envelope")]
        if let Some(e) = envelope_config {
            let (provider, make) = super::envelope::provider(e, &shared, at).await?;
            #[cfg(feature = "metrics")]
            let provider: Arc<dyn kms_core::CryptoProvider> = match &metrics {
                Some(m) => {
                    // `metrics.audit` covers the provider's calls too.
                    let audit = metrics_config.and_then(|c| c.audit).unwrap_or(true);
                    Arc::new(m.instrument_provider(provider).audit(audit))
                }
                None => provider,
            };
            builder = builder.layer(make(provider));
        }
        let _ = (&shared, envelope_config);
        let breaker_handle = match breaker {
            Some(b) => {
                let handle = b.handle();
                builder = builder.layer(b);
                Some(handle)
            }
            None => None,
        };
        builder = builder.option_layer(retry);
        // The backend monitor sits right above the timeout: every call it sees is an attempt
        // that reached the backend; it follows the breaker's state.
        #[cfg(feature = "metrics")]
        if let Some(monitor) = monitor {
            let monitor = match &breaker_handle {
                Some(h) => monitor.circuit_breaker(h),
                None => monitor,
            };
            builder = builder.layer(monitor);
        }
        builder = builder.option_layer(timeout);
        let _ = label;
        Ok(Stack {
            store: builder.build(),
            breaker: breaker_handle,
            #[cfg(feature = "cache")]
            cache,
            #[cfg(feature = "metrics")]
            metrics,
            #[cfg(feature = "metrics")]
            failure_recorder,
        })
    }

    async fn backend(&self, c: &StoreConfig, at: &At) -> Result<(Arc<dyn KeyStore>, Shared)> {
        #[allow(unused_mut)]
        let mut shared = Shared::default();
        let store: Arc<dyn KeyStore> = match c.backend_name(at)? {
            "memory" => c
                .memory
                .as_ref()
                .map_or_else(|| unreachable_backend(at), |m| m.build(at))?,
            "vault" => {
                #[cfg(feature = "vault")]
                {
                    let v = c
                        .vault
                        .as_ref()
                        .ok_or_else(|| unreachable_backend_err(at))?;
                    let (store, client) = super::vault::build_store(v, at).await?;
                    shared.vault = Some(client);
                    store
                }
                #[cfg(not(feature = "vault"))]
                return Err(not_compiled(at, "vault", "vault"));
            }
            "aws" => {
                #[cfg(feature = "aws")]
                {
                    let a = c.aws.as_ref().ok_or_else(|| unreachable_backend_err(at))?;
                    let (store, sdk) = super::aws::build_store(a, at).await?;
                    shared.aws = Some(sdk);
                    store
                }
                #[cfg(not(feature = "aws"))]
                return Err(not_compiled(at, "aws", "aws"));
            }
            "keyring" => {
                #[cfg(feature = "keyring")]
                {
                    let k = c
                        .keyring
                        .as_ref()
                        .ok_or_else(|| unreachable_backend_err(at))?;
                    super::keyring::build_store(k, at).await?
                }
                #[cfg(not(feature = "keyring"))]
                return Err(not_compiled(at, "keyring", "keyring"));
            }
            other => return Err(config_error(&at.key(other), "unknown backend")),
        };
        Ok((store, shared))
    }
}

fn unreachable_backend_err(at: &At) -> kms_core::Error {
    config_error(&at.whole(), "missing: a backend table")
}

fn unreachable_backend<T>(at: &At) -> Result<T> {
    Err(unreachable_backend_err(at))
}

#[allow(dead_code)]
fn not_compiled(at: &At, table: &str, feature: &str) -> kms_core::Error {
    config_error(
        &at.key(table),
        format_args!("`{table}` is not compiled in: enable the kms feature `{feature}`"),
    )
}
