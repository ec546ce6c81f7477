//! [`CacheLayer`]: the cache's configuration, and the [`Layer`] that builds it.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use kms_core::{KeyStore, Layer};

use crate::cached::{Cached, Core};
use crate::handle::CacheHandle;
use crate::observer::CacheObserver;

/// Default time-to-live: 5 minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// Default downward TTL jitter: up to 10 % shorter.
pub const DEFAULT_JITTER: f64 = 0.1;
/// Default bound on entries.
pub const DEFAULT_MAX_ENTRIES: u64 = 10_000;

/// How the cache is bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capacity {
    /// At most this many entries.
    Entries(u64),
    /// At most this many bytes of key names and secret values (a weigher on secret size).
    Bytes(u64),
}

/// Configuration of the caching decorator, and the [`Layer`] that wraps a store in it.
///
/// Defaults: TTL 5 minutes with up to 10 % downward jitter, no time-to-idle, 10,000 entries,
/// refresh-ahead, stale-if-error and negative caching off.
///
/// A layer builds one cache per store it wraps; its [`handle`](CacheLayer::handle) controls
/// the first one it built.
#[derive(Clone)]
pub struct CacheLayer {
    pub(crate) ttl: Duration,
    pub(crate) tti: Option<Duration>,
    pub(crate) jitter: f64,
    pub(crate) capacity: Capacity,
    pub(crate) refresh_ahead: Option<f64>,
    pub(crate) max_stale: Option<Duration>,
    pub(crate) negative_ttl: Option<Duration>,
    pub(crate) observer: Option<Arc<dyn CacheObserver>>,
    pub(crate) clock: Option<quanta::Clock>,
    pub(crate) built: Arc<OnceLock<Arc<Core>>>,
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
            ttl: DEFAULT_TTL,
            tti: None,
            jitter: DEFAULT_JITTER,
            capacity: Capacity::Entries(DEFAULT_MAX_ENTRIES),
            refresh_ahead: None,
            max_stale: None,
            negative_ttl: None,
            observer: None,
            clock: None,
            built: Arc::default(),
        }
    }

    /// Time-to-live of an entry, before jitter.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Expire an entry not read for this long (time-to-idle), even within its TTL.
    #[must_use]
    pub fn time_to_idle(mut self, tti: Duration) -> Self {
        self.tti = Some(tti);
        self
    }

    /// Shorten each entry's TTL by a random fraction in `[0, jitter)` (clamped to `0..=0.9`),
    /// so a fleet of services does not expire a key in lockstep. `0.0` disables jitter.
    #[must_use]
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 0.9)
        } else {
            0.0
        };
        self
    }

    /// How the cache is bounded (entries or bytes).
    #[must_use]
    pub fn capacity(mut self, capacity: Capacity) -> Self {
        self.capacity = capacity;
        self
    }

    /// Refresh-ahead: a `get` that finds an entry older than `fraction` of its TTL returns it
    /// at once and starts one background reload, so hot keys never miss. Off by default.
    #[must_use]
    pub fn refresh_ahead(mut self, fraction: f64) -> Self {
        self.refresh_ahead = Some(if fraction.is_finite() {
            fraction.clamp(0.05, 1.0)
        } else {
            1.0
        });
        self
    }

    /// Stale-if-error: when a reload fails with a transient error (unavailable, timeout, rate
    /// limited, circuit open), serve the expired value if it expired less than `max_stale`
    /// ago. Never on not-found, permission or authentication errors. Off by default.
    #[must_use]
    pub fn stale_if_error(mut self, max_stale: Duration) -> Self {
        self.max_stale = Some(max_stale);
        self
    }

    /// Negative caching: remember that a key does not exist for `ttl`. Off by default.
    #[must_use]
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = Some(ttl);
        self
    }

    /// Push every cache event to `observer` (e.g. `kms-metrics`' Prometheus exporter).
    #[must_use]
    pub fn observer(mut self, observer: Arc<dyn CacheObserver>) -> Self {
        self.observer = Some(observer);
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
        self.clock = Some(clock);
        self
    }

    /// A handle to the cache this layer builds (invalidate, refresh, stats). Before the layer
    /// has built a store, the handle's operations do nothing and its stats are zero.
    pub fn handle(&self) -> CacheHandle {
        CacheHandle::new(self.built.clone())
    }

    /// Wraps `inner` directly (without a [`StoreBuilder`](kms_core::StoreBuilder)).
    pub fn wrap(&self, inner: impl KeyStore) -> Cached {
        self.build(Arc::new(inner))
    }

    fn build(&self, inner: Arc<dyn KeyStore>) -> Cached {
        let core = Core::new(inner, self);
        let _ = self.built.set(core.clone());
        Cached::from_core(core)
    }
}

impl Layer for CacheLayer {
    fn layer(&self, inner: Arc<dyn KeyStore>) -> Arc<dyn KeyStore> {
        Arc::new(self.build(inner))
    }
}

impl fmt::Debug for CacheLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheLayer")
            .field("ttl", &self.ttl)
            .field("tti", &self.tti)
            .field("jitter", &self.jitter)
            .field("capacity", &self.capacity)
            .field("refresh_ahead", &self.refresh_ahead)
            .field("max_stale", &self.max_stale)
            .field("negative_ttl", &self.negative_ttl)
            .field("observer", &self.observer.is_some())
            .field(
                "clock",
                &self.clock.as_ref().map_or("default", |_| "custom"),
            )
            .finish()
    }
}
