//! [`Plan`]: every configured layer of a store validated and built, and its backend's options
//! checked, before anything is reached, so a typo never costs a login.

use kms_core::{CircuitBreakerLayer, Result, RetryLayer, TimeoutLayer, ValidateLayer};

use super::StoreConfig;
use super::at::At;
use super::backend::BackendPlan;
#[cfg(feature = "envelope")]
use super::envelope::EnvelopePlan;
use super::failover::FailoverPlan;
#[cfg(feature = "metrics")]
use super::metrics::MetricsPlan;
#[cfg(not(all(feature = "cache", feature = "metrics", feature = "envelope")))]
use crate::error::not_compiled;

/// One store, planned: a layer is here when its table is given and not `enabled = false`.
/// Making a plan reads no secret, registers no metric and reaches no service.
pub(crate) struct Plan {
    /// The service-side metrics layer and the backend monitor, to be made once the registry
    /// and the backend are known.
    #[cfg(feature = "metrics")]
    pub(crate) metrics: Option<MetricsPlan>,
    /// The value-size limit.
    pub(crate) validate: Option<ValidateLayer>,
    /// The read cache.
    #[cfg(feature = "cache")]
    pub(crate) cache: Option<kms_cache::CacheLayer>,
    /// Envelope encryption, whose key provider is made once the backend is open (it may
    /// share the backend's connection).
    #[cfg(feature = "envelope")]
    pub(crate) envelope: Option<EnvelopePlan>,
    /// Failover to replica stores, and monotonic reads across them.
    pub(crate) failover: Option<FailoverPlan>,
    /// The circuit breaker.
    pub(crate) breaker: Option<CircuitBreakerLayer>,
    /// Retries.
    pub(crate) retry: Option<RetryLayer>,
    /// Per-attempt deadlines.
    pub(crate) timeout: Option<TimeoutLayer>,
    /// The backend.
    pub(crate) backend: BackendPlan,
    /// What tells the backend apart from another store's ([`BackendPlan::identity`]).
    #[cfg(feature = "metrics")]
    pub(crate) identity: String,
}

impl Plan {
    /// Validates every layer `c` configures, then the backend's own options.
    pub(crate) fn new(c: &StoreConfig, at: &At) -> Result<Self> {
        let on = |enabled: Option<bool>| enabled != Some(false);
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
        let failover = match &c.failover {
            Some(f) if on(f.enabled) => Some(f.plan(at)?),
            _ => None,
        };
        let cache = c.cache.as_ref().filter(|x| on(x.enabled));
        #[cfg(feature = "cache")]
        let cache = cache.map(|x| x.layer(at)).transpose()?;
        #[cfg(not(feature = "cache"))]
        if cache.is_some() {
            return Err(not_compiled(&at.key("cache"), "cache", "cache"));
        }
        let metrics = c.metrics.as_ref().filter(|x| on(x.enabled));
        #[cfg(feature = "metrics")]
        let metrics = metrics
            .map(|m| MetricsPlan::new(m, at.store_name(), at))
            .transpose()?;
        #[cfg(not(feature = "metrics"))]
        if metrics.is_some() {
            return Err(not_compiled(&at.key("metrics"), "metrics", "metrics"));
        }
        let envelope = c.envelope.as_ref().filter(|x| on(x.enabled));
        #[cfg(feature = "envelope")]
        let envelope = envelope.map(|e| EnvelopePlan::new(e, at)).transpose()?;
        #[cfg(not(feature = "envelope"))]
        if envelope.is_some() {
            return Err(not_compiled(&at.key("envelope"), "envelope", "envelope"));
        }
        Ok(Self {
            #[cfg(feature = "metrics")]
            metrics,
            validate,
            #[cfg(feature = "cache")]
            cache,
            #[cfg(feature = "envelope")]
            envelope,
            failover,
            breaker,
            retry,
            timeout,
            backend: BackendPlan::new(c, at)?,
            #[cfg(feature = "metrics")]
            identity: BackendPlan::identity(c),
        })
    }
}
