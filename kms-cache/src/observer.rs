//! Observability hooks: how the cache reports what it does without depending on Prometheus.
//!
//! The cache pushes events to a [`CacheObserver`] (`kms-metrics` implements one that feeds
//! `<p>_key_cache_hits_total{backend}`, `<p>_key_cache_misses_total{backend}` and
//! `<p>_key_cache_size{backend}`), and also keeps counters readable at any time as a
//! [`CacheStats`] snapshot.

use std::time::Duration;

use crate::rejection::Rejection;

/// Why an entry left the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EvictionCause {
    /// Its time-to-live or time-to-idle ran out.
    Expired,
    /// The cache was over its entry or byte budget.
    Size,
    /// It was invalidated: by a write through the cache or an explicit call.
    Explicit,
}

impl EvictionCause {
    /// A stable label: `"expired"`, `"size"`, `"explicit"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Size => "size",
            Self::Explicit => "explicit",
        }
    }
}

/// Receives the cache's events. Every method has an empty default; implement what you export.
///
/// Called on the hot path (`hit` on every cache hit): implementations must be cheap, must not
/// block and must not panic. They never see key names or values.
pub trait CacheObserver: Send + Sync + 'static {
    /// A `get` was answered from the cache.
    fn hit(&self) {}
    /// A `get` was not in the cache (a load follows, or joins one in flight).
    fn miss(&self) {}
    /// A load from the inner store finished; `ok` is false when it failed.
    fn load(&self, ok: bool) {
        let _ = ok;
    }
    /// An expired value was served because the backend failed, or did not answer within the
    /// stale-while-revalidate wait, or is known to be down (stale-if-error). The cache calls
    /// [`served_stale`](Self::served_stale), whose default calls this.
    fn stale_serve(&self) {}
    /// An expired value was served (as [`stale_serve`](Self::stale_serve) says when),
    /// `expired_for` after it stopped being fresh: its staleness. The default calls
    /// [`stale_serve`](Self::stale_serve); implement this one to see the staleness.
    fn served_stale(&self, expired_for: Duration) {
        let _ = expired_for;
        self.stale_serve();
    }
    /// An entry left the cache.
    fn eviction(&self, cause: EvictionCause) {
        let _ = cause;
    }
    /// The cache's current size: entries and weighted size in bytes.
    fn size(&self, entries: u64, weighted_bytes: u64) {
        let _ = (entries, weighted_bytes);
    }
    /// A report that a credential the cache served was refused downstream ended with
    /// `outcome` (see [`CacheHandle::report_rejected`](crate::CacheHandle::report_rejected)):
    /// one call per report, joined reports included.
    fn rejection(&self, outcome: Rejection) {
        let _ = outcome;
    }
}

/// A snapshot of the cache's counters since it was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// `get`s answered from the cache.
    pub hits: u64,
    /// `get`s not answered from the cache.
    pub misses: u64,
    /// Loads from the inner store that succeeded.
    pub loads: u64,
    /// Loads from the inner store that failed.
    pub load_failures: u64,
    /// Expired values served because the backend failed, did not answer within the
    /// stale-while-revalidate wait, or was known to be down.
    pub stale_serves: u64,
    /// Refresh-ahead reloads skipped because the cache was built outside a Tokio runtime.
    pub refreshes_skipped: u64,
    /// Loads running now (started by a `get`, a refresh-ahead or a refresh; a load keeps
    /// running after its callers leave, until it ends or its load timeout passes).
    pub loads_in_flight: u64,
    /// Entries that expired.
    pub evictions_expired: u64,
    /// Entries evicted to stay within the size budget.
    pub evictions_size: u64,
    /// Entries invalidated by writes or explicit calls.
    pub evictions_explicit: u64,
    /// Reports of refused credentials received
    /// ([`CacheHandle::report_rejected`](crate::CacheHandle::report_rejected)), whatever
    /// their outcome.
    pub rejection_reports: u64,
    /// Forced refreshes those reports started (at most one per key per rate limit).
    pub forced_refreshes: u64,
    /// Entries held now.
    pub entries: u64,
    /// Weighted size held now, in bytes.
    pub weighted_bytes: u64,
}
