//! [`Opener`] opens a store's configuration as a [`Stack`]: [`Plan::new`] validates it and
//! [`assemble`](Opener::assemble) stacks the planned layers over the opened backend.

use std::collections::BTreeMap;
use std::sync::Arc;

use kms_core::{CircuitBreakerLayer, FailoverTarget, KeyStore, Result, StoreBuilder};

use super::at::At;
use super::plan::Plan;
use super::stack::Stack;
use super::{Config, StoreConfig};

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
        let at = At::store(name);
        let plan = Plan::new(store, &at)?;
        let mut replicas = Vec::new();
        if let Some(f) = &plan.failover {
            let key = at.key("failover.replicas");
            for replica in &f.replicas {
                if replica == name {
                    return Err(crate::error::config_error(
                        &key,
                        format_args!("store `{name}` cannot be its own replica"),
                    ));
                }
                let c = config.require(replica).map_err(|_| {
                    crate::error::config_error(
                        &key,
                        format_args!(
                            "no store named `{replica}` in this configuration (stores: {})",
                            config.store_names().collect::<Vec<_>>().join(", ")
                        ),
                    )
                })?;
                if c.failover
                    .as_ref()
                    .is_some_and(|f| f.enabled != Some(false))
                {
                    return Err(crate::error::config_error(
                        &key,
                        format_args!(
                            "store `{replica}` has a `failover` table itself; a replica is one \
                             store, not another failover chain"
                        ),
                    ));
                }
                let stack = Box::pin(self.open_named(config, replica)).await?;
                replicas.push((replica.clone(), stack));
            }
        }
        self.assemble(plan, replicas).await
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
        let plan = Plan::new(c, at)?;
        if plan.failover.is_some() {
            return Err(crate::error::config_error(
                &at.key("failover.replicas"),
                "replicas are other stores of a configuration file: open this store by name \
                 from its configuration (`Config::open`)",
            ));
        }
        self.assemble(plan, Vec::new()).await
    }

    /// Opens the backend, makes what needs it (the instruments are labelled with it, an
    /// envelope provider may share its connection), then stacks the planned layers over it in
    /// one pass, outermost first (see [`kms_core::layers`](crate::core::layers) for the order and why).
    async fn assemble(&self, plan: Plan, replicas: Vec<(String, Stack)>) -> Result<Stack> {
        let backend = plan.backend.open().await?;
        #[cfg(feature = "metrics")]
        let failover_metrics = plan.metrics.as_ref().map(|m| {
            (
                self.registry().failover_families(m.prefix()),
                m.label(backend.store.backend()).to_owned(),
            )
        });
        #[cfg(feature = "metrics")]
        let (service_metrics, monitor, instruments) = match plan.metrics {
            Some(m) => {
                let (layer, monitor, i) =
                    m.instruments(&self.registry(), backend.store.backend(), &plan.identity)?;
                (Some(layer), Some(monitor), Some(i))
            }
            None => (None, None, None),
        };
        #[cfg(feature = "envelope")]
        let envelope = match plan.envelope {
            Some(e) => {
                let provider = backend.shared.provider(&e).await?;
                #[cfg(feature = "metrics")]
                let provider = match &instruments {
                    Some(m) => m.instrument_provider(provider),
                    None => provider,
                };
                Some(e.layer(provider))
            }
            None => None,
        };
        #[cfg(feature = "cache")]
        let cache = plan.cache;
        #[cfg(feature = "metrics")]
        let cache = match &instruments {
            Some(m) => cache.map(|c| c.observer(m.cache_observer())),
            None => cache,
        };
        let breaker = plan.breaker.as_ref().map(CircuitBreakerLayer::handle);
        // The monitor follows the breaker's state.
        #[cfg(feature = "metrics")]
        let monitor = match &breaker {
            Some(h) => monitor.map(|m| m.circuit_breaker(h)),
            None => monitor,
        };
        // The cache reads what the monitor knows of the backend: while it is down, stale reads
        // are answered at once instead of waiting for a reload that cannot succeed.
        #[cfg(all(feature = "cache", feature = "metrics"))]
        let cache = match &monitor {
            Some(m) => cache.map(|c| c.health_signal(m.health_signal())),
            None => cache,
        };
        #[cfg(feature = "cache")]
        let cache_handle = cache.as_ref().map(kms_cache::CacheLayer::handle);

        // Failover: the replicas' stacks are targets; this store's breaker and monitor say
        // when the primary is down.
        let (monotonic, failover) = match plan.failover {
            Some(f) => {
                let mut layer = f.layer;
                for (name, stack) in replicas {
                    let mut target = FailoverTarget::new(name, stack.store.clone());
                    if let Some(b) = stack.breaker() {
                        target = target.circuit_breaker(b);
                    }
                    layer = layer.replica(target);
                }
                if let Some(b) = &breaker {
                    layer = layer.primary_circuit_breaker(b);
                }
                #[cfg(feature = "metrics")]
                if let Some(m) = &monitor {
                    layer = layer.primary_health_signal(m.health_signal());
                }
                (f.monotonic, Some(layer))
            }
            None => (None, None),
        };
        let failover_handle = failover.as_ref().map(kms_core::FailoverLayer::handle);
        #[cfg(feature = "metrics")]
        if let (Some(handle), Some((families, label))) = (&failover_handle, &failover_metrics) {
            families.watch(label, handle);
        }

        // The one pass, outermost first. Retry is a layer of its own, right above the backend
        // monitor, so the monitor sees each attempt.
        let store = StoreBuilder::from_arc(backend.store);
        #[cfg(feature = "metrics")]
        let store = store.option_layer(service_metrics);
        let store = store.option_layer(plan.validate);
        #[cfg(feature = "cache")]
        let store = store.option_layer(cache);
        #[cfg(feature = "envelope")]
        let store = store.option_layer(envelope);
        let store = store.option_layer(monotonic).option_layer(failover);
        let store = store.option_layer(plan.breaker).option_layer(plan.retry);
        #[cfg(feature = "metrics")]
        let store = store.option_layer(monitor);
        let store = store.option_layer(plan.timeout).build();

        Ok(Stack {
            store,
            breaker,
            failover: failover_handle,
            #[cfg(feature = "cache")]
            cache: cache_handle,
            #[cfg(feature = "metrics")]
            metrics: instruments.as_ref().map(|i| i.families.clone()),
            #[cfg(feature = "metrics")]
            registry: instruments.as_ref().map(|_| self.registry()),
            #[cfg(feature = "metrics")]
            failure_recorder: instruments.and_then(|i| i.recorder),
        })
    }

    /// The registry metrics go to.
    #[cfg(feature = "metrics")]
    fn registry(&self) -> crate::MetricsRegistry {
        self.registry
            .clone()
            .unwrap_or_else(|| crate::MetricsRegistry::global().clone())
    }
}

/// Opening a configuration's stores goes through an [`Opener`] on the global registry.
impl Config {
    /// Builds the store `name` with its layers, metrics going to
    /// [`MetricsRegistry::global`](crate::MetricsRegistry::global) (use an [`Opener`] to
    /// choose a registry or to get the cache, breaker and metrics handles).
    ///
    /// # Errors
    ///
    /// [`Configuration`](kms_core::ErrorKind::Configuration) for an unknown name, an invalid
    /// or missing option, or a backend or layer whose feature is not compiled in; whatever
    /// the backend answers when it is reached at build (a Vault login, say).
    pub async fn open(&self, name: &str) -> Result<Arc<dyn KeyStore>> {
        Opener::new()
            .open_named(self, name)
            .await
            .map(Stack::into_store)
    }

    /// Builds the [`default_store`](Self::default_store).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); [`Configuration`](kms_core::ErrorKind::Configuration) when
    /// there is no default.
    pub async fn open_default(&self) -> Result<Arc<dyn KeyStore>> {
        let name = self.require_default()?;
        self.open(name).await
    }

    /// Builds every store, by name.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), for the first store that fails.
    pub async fn build(&self) -> Result<BTreeMap<String, Stack>> {
        Opener::new().build(self).await
    }
}
