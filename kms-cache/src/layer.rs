//! [`CacheLayer`]: the builder users configure a cache with, and the [`Layer`] that builds the
//! engine and wraps a store in its [`Cached`] decorator.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use kms_core::{HealthSignal, KeyStore, Layer, Result};

use crate::cached::Cached;
use crate::engine::Core;
use crate::handle::CacheHandle;
use crate::observer::CacheObserver;
use crate::settings::{Capacity, Settings};

/// Configuration of the caching decorator, and the [`Layer`] that wraps a store in it.
///
/// Defaults: TTL 5 minutes with up to 10 % downward jitter, no time-to-idle, 10,000 entries,
/// refresh-ahead, stale-if-error and negative caching off, loads bounded to 30 s, a stale value
/// (with stale-if-error on) served after 100 ms of a reload that has not answered.
///
/// Settings are checked when the cache is built ([`validate`](Self::validate), called by
/// [`StoreBuilder::try_build`](kms_core::StoreBuilder::try_build) and
/// [`try_wrap`](Self::try_wrap)); a cache built with a bad setting anyway answers every call
/// with that configuration error and never calls the store it wraps.
///
/// A layer builds one cache per store it wraps; its [`handle`](CacheLayer::handle) controls
/// the first one it built.
#[derive(Clone)]
pub struct CacheLayer {
    settings: Settings,
    /// The engine of the first store this layer built, for [`handle`](CacheLayer::handle)s.
    built: Arc<OnceLock<Arc<Core>>>,
}

impl Default for CacheLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl CacheLayer {
    /// The defaults.
    pub fn new() -> Self {
        Self {
            settings: Settings::default(),
            built: Arc::default(),
        }
    }

    /// Time-to-live of an entry, before jitter (longer than zero). Every duration setting of
    /// the cache is capped at 100 years, so `Duration::MAX` means "never" and cannot overflow
    /// the clock.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.settings.ttl = ttl;
        self
    }

    /// Expire an entry not read for this long (time-to-idle, longer than zero), even within
    /// its TTL.
    #[must_use]
    pub fn time_to_idle(mut self, tti: Duration) -> Self {
        self.settings.tti = Some(tti);
        self
    }

    /// Shorten each entry's TTL by a random fraction in `[0, jitter)` (`jitter` in
    /// `0.0..=0.9`), so a fleet of services does not expire a key in lockstep. `0.0` disables
    /// jitter.
    #[must_use]
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.settings.jitter = fraction;
        self
    }

    /// How the cache is bounded (entries or bytes, more than zero).
    #[must_use]
    pub fn capacity(mut self, capacity: Capacity) -> Self {
        self.settings.capacity = capacity;
        self
    }

    /// Refresh-ahead: a `get` that finds an entry older than `fraction` (in `(0, 1]`) of its
    /// TTL returns it at once and starts one background reload, so hot keys never miss. Off
    /// by default.
    ///
    /// The reload runs on the Tokio runtime the cache was built in (its
    /// [`Handle`](tokio::runtime::Handle) is captured then); a cache built outside any
    /// runtime skips the reload and counts it in
    /// [`CacheStats::refreshes_skipped`](crate::CacheStats::refreshes_skipped): the hit is
    /// still answered.
    #[must_use]
    pub fn refresh_ahead(mut self, fraction: f64) -> Self {
        self.settings.refresh_ahead = Some(fraction);
        self
    }

    /// Stale-if-error: when a reload fails because the backend could not be asked (an error
    /// whose kind [`serves_stale`](kms_core::ErrorKind::serves_stale)), serve the expired value
    /// if it expired less than `max_stale` (longer than zero) ago. Never on an answer the
    /// backend gave (not-found, permission or authentication errors …), and once the backend
    /// has answered not-found or permission denied for a key, its expired value is gone. Off
    /// by default. See also
    /// [`stale_while_revalidate`](Self::stale_while_revalidate).
    #[must_use]
    pub fn stale_if_error(mut self, max_stale: Duration) -> Self {
        self.settings.max_stale = Some(max_stale);
        self
    }

    /// Stale-while-revalidate, with stale-if-error on: a `get` of an expired key whose reload
    /// has not answered within `wait` is served the stale value, while the reload carries on
    /// in the background (and updates the cache, or the breaker below, when it ends).
    /// Default [`DEFAULT_STALE_WAIT`](crate::DEFAULT_STALE_WAIT), 100 ms; `Duration::ZERO`
    /// serves the stale value at once. Needs the Tokio runtime (with timers) the cache was
    /// built in; without one, a `get` waits for the reload.
    #[must_use]
    pub fn stale_while_revalidate(mut self, wait: Duration) -> Self {
        self.settings.stale_wait = wait;
        self
    }

    /// Reads what the layer watching the backend knows (a [`HealthSignal`], usually
    /// `kms_metrics::BackendMonitor::health_signal`). While it says the backend is down, a
    /// `get` of an expired key that stale-if-error may serve is answered with the stale value
    /// at once, with no stale-while-revalidate wait: the reload that wait is for cannot
    /// succeed. The reload is still started, in the background (one per key, bounded by
    /// [`load_timeout`](Self::load_timeout)); it caches its result when it succeeds, and its
    /// success is what tells the watcher the backend is back. Keys with nothing to serve
    /// stale wait for their load as always. Needs the Tokio runtime the cache was built in;
    /// without one the signal is not read. Off by default (no signal: every such `get` waits
    /// the stale wait).
    #[must_use]
    pub fn health_signal(mut self, signal: HealthSignal) -> Self {
        self.settings.signal = Some(signal);
        self
    }

    /// Negative caching: remember that a key does not exist for `ttl` (longer than zero). Off
    /// by default.
    #[must_use]
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.settings.negative_ttl = Some(ttl);
        self
    }

    /// The longest one load from the inner store may run (longer than zero; default
    /// [`DEFAULT_LOAD_TIMEOUT`](crate::DEFAULT_LOAD_TIMEOUT), 30 s). Loads run detached from
    /// the `get`s waiting for them (see the crate docs), so this bounds how long a load nobody
    /// waits for any more keeps its bookkeeping; it ends as an
    /// [`ErrorKind::Timeout`](kms_core::ErrorKind::Timeout) failure. Set it above the time the layers below may take (retries included).
    #[must_use]
    pub fn load_timeout(mut self, timeout: Duration) -> Self {
        self.settings.load_timeout = timeout;
        self
    }

    /// The shortest time between the end of one forced refresh of a key, started by
    /// [`CacheHandle::report_rejected`], and the start of the next (longer than zero; default
    /// [`DEFAULT_REJECTION_RATE_LIMIT`](crate::DEFAULT_REJECTION_RATE_LIMIT), 30 s, as JWKS
    /// verifiers rate-limit their forced refetches). Reports of the cached version within it
    /// change nothing and cost no backend read, so a storm of reports cannot drive reads.
    #[must_use]
    pub fn rejection_rate_limit(mut self, limit: Duration) -> Self {
        self.settings.rejection_rate_limit = limit;
        self
    }

    /// How long a forced refresh (see [`CacheHandle::report_rejected`]) keeps reading the key
    /// again, with jittered back-off, while the backend still answers the refused version
    /// (default [`DEFAULT_REJECTION_RETRY_BUDGET`](crate::DEFAULT_REJECTION_RETRY_BUDGET),
    /// 90 s: the window of an AWS single-user rotation between the password change and the
    /// move of `AWSCURRENT`; at most
    /// [`MAX_REJECTION_RETRY_BUDGET`](crate::MAX_REJECTION_RETRY_BUDGET), 15 minutes).
    /// Zero reads once. With the default budget a refresh makes about 15 reads, 21 at most.
    #[must_use]
    pub fn rejection_retry_budget(mut self, budget: Duration) -> Self {
        self.settings.rejection_retry_budget = budget;
        self
    }

    /// Push every cache event to `observer` (e.g. `kms-metrics`' Prometheus exporter).
    #[must_use]
    pub fn observer(mut self, observer: Arc<dyn CacheObserver>) -> Self {
        self.settings.observer = Some(observer);
        self
    }

    /// The clock freshness is decided on (TTL, jitter, time-to-idle, refresh-ahead, stale
    /// window). The default, `quanta::Clock::new()`, reads the CPU's time-stamp counter where it
    /// is invariant (the OS monotonic clock otherwise). Tests pass a mocked clock,
    /// [`quanta::Clock::mock`], and move it forward by hand:
    ///
    /// ```
    /// # use std::time::Duration;
    /// let (clock, time) = kms_cache::quanta::Clock::mock();
    /// let layer = kms_cache::CacheLayer::new().clock(clock);
    /// time.increment(Duration::from_secs(301)); // every entry is past its TTL now
    /// ```
    #[must_use]
    pub fn clock(mut self, clock: quanta::Clock) -> Self {
        self.settings.clock = Some(clock);
        self
    }

    /// A handle to the cache this layer builds (invalidate, refresh, stats). Before the layer
    /// has built a store, the handle's operations do nothing and its stats are zero.
    pub fn handle(&self) -> CacheHandle {
        CacheHandle::new(self.built.clone())
    }

    /// Checks the settings: durations longer than zero (`ttl`, `time_to_idle`,
    /// `stale_if_error`, `negative_ttl`, `load_timeout`, `rejection_rate_limit`), `jitter` in
    /// `0.0..=0.9`, `refresh_ahead` in `(0, 1]`, a capacity of at least one entry or byte, a
    /// `rejection_retry_budget` of at most 15 minutes.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`](kms_core::ErrorKind::Configuration) naming the first bad
    /// setting.
    pub fn validate(&self) -> Result<()> {
        self.settings.validate()
    }

    /// Wraps `inner` directly (without a [`StoreBuilder`](kms_core::StoreBuilder)). With a
    /// bad setting the cache answers every call with that configuration error; prefer
    /// [`try_wrap`](Self::try_wrap).
    pub fn wrap(&self, inner: impl KeyStore) -> Cached {
        self.build(Arc::new(inner))
    }

    /// Wraps `inner` directly, the settings checked first.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`](kms_core::ErrorKind::Configuration) from
    /// [`validate`](Self::validate).
    pub fn try_wrap(&self, inner: impl KeyStore) -> Result<Cached> {
        self.validate()?;
        Ok(self.wrap(inner))
    }

    fn build(&self, inner: Arc<dyn KeyStore>) -> Cached {
        let core = Core::new(inner, &self.settings);
        let _ = self.built.set(core.clone());
        Cached::from_core(core)
    }
}

impl Layer for CacheLayer {
    fn layer(&self, inner: Arc<dyn KeyStore>) -> Arc<dyn KeyStore> {
        Arc::new(self.build(inner))
    }

    fn validate(&self) -> Result<()> {
        CacheLayer::validate(self)
    }
}

impl fmt::Debug for CacheLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("CacheLayer")
            .field("ttl", &s.ttl)
            .field("tti", &s.tti)
            .field("jitter", &s.jitter)
            .field("capacity", &s.capacity)
            .field("refresh_ahead", &s.refresh_ahead)
            .field("max_stale", &s.max_stale)
            .field("negative_ttl", &s.negative_ttl)
            .field("stale_wait", &s.stale_wait)
            .field("load_timeout", &s.load_timeout)
            .field("observer", &s.observer.is_some())
            .field("health_signal", &s.signal)
            .field("rejection_rate_limit", &s.rejection_rate_limit)
            .field("rejection_retry_budget", &s.rejection_retry_budget)
            .field("clock", &s.clock.as_ref().map_or("default", |_| "custom"))
            .finish()
    }
}
