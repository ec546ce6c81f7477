//! The cache's counters, readable as [`CacheStats`] and pushed to an optional observer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use kms_core::sharded::ShardedCounter;

use crate::observer::{CacheObserver, CacheStats, EvictionCause};
use crate::rejection::Rejection;

#[derive(Default)]
pub(crate) struct Recorder {
    /// Per-thread slots (`kms_core::sharded`): threads hitting the cache at once neither share
    /// a cache line nor, while they own their slot, take a locked instruction.
    hits: ShardedCounter,
    misses: AtomicU64,
    loads: AtomicU64,
    load_failures: AtomicU64,
    stale_serves: AtomicU64,
    refreshes_skipped: AtomicU64,
    evictions_expired: AtomicU64,
    evictions_size: AtomicU64,
    evictions_explicit: AtomicU64,
    rejection_reports: AtomicU64,
    forced_refreshes: AtomicU64,
    observer: Option<Arc<dyn CacheObserver>>,
}

impl Recorder {
    pub(crate) fn new(observer: Option<Arc<dyn CacheObserver>>) -> Self {
        Self {
            observer,
            ..Self::default()
        }
    }

    pub(crate) fn has_observer(&self) -> bool {
        self.observer.is_some()
    }

    #[inline]
    pub(crate) fn hit(&self) {
        self.hits.inc();
        if let Some(o) = &self.observer {
            o.hit();
        }
    }

    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Relaxed);
        if let Some(o) = &self.observer {
            o.miss();
        }
    }

    pub(crate) fn load(&self, ok: bool) {
        if ok { &self.loads } else { &self.load_failures }.fetch_add(1, Relaxed);
        if let Some(o) = &self.observer {
            o.load(ok);
        }
    }

    /// A stale value was served, `expired_for` after it stopped being fresh.
    pub(crate) fn stale_serve(&self, expired_for: Duration) {
        self.stale_serves.fetch_add(1, Relaxed);
        if let Some(o) = &self.observer {
            o.served_stale(expired_for);
        }
    }

    pub(crate) fn refresh_skipped(&self) {
        self.refreshes_skipped.fetch_add(1, Relaxed);
    }

    pub(crate) fn eviction(&self, cause: EvictionCause) {
        match cause {
            EvictionCause::Expired => &self.evictions_expired,
            EvictionCause::Size => &self.evictions_size,
            EvictionCause::Explicit => &self.evictions_explicit,
        }
        .fetch_add(1, Relaxed);
        if let Some(o) = &self.observer {
            o.eviction(cause);
        }
    }

    /// A report of a refused credential ended with `outcome`.
    pub(crate) fn rejection(&self, outcome: Rejection) {
        self.rejection_reports.fetch_add(1, Relaxed);
        if let Some(o) = &self.observer {
            o.rejection(outcome);
        }
    }

    /// A report started a forced refresh.
    pub(crate) fn forced_refresh(&self) {
        self.forced_refreshes.fetch_add(1, Relaxed);
    }

    pub(crate) fn size(&self, entries: u64, weighted_bytes: u64) {
        if let Some(o) = &self.observer {
            o.size(entries, weighted_bytes);
        }
    }

    pub(crate) fn snapshot(
        &self,
        entries: u64,
        weighted_bytes: u64,
        loads_in_flight: u64,
    ) -> CacheStats {
        CacheStats {
            hits: self.hits.get(),
            misses: self.misses.load(Relaxed),
            loads: self.loads.load(Relaxed),
            load_failures: self.load_failures.load(Relaxed),
            stale_serves: self.stale_serves.load(Relaxed),
            refreshes_skipped: self.refreshes_skipped.load(Relaxed),
            loads_in_flight,
            evictions_expired: self.evictions_expired.load(Relaxed),
            evictions_size: self.evictions_size.load(Relaxed),
            evictions_explicit: self.evictions_explicit.load(Relaxed),
            rejection_reports: self.rejection_reports.load(Relaxed),
            forced_refreshes: self.forced_refreshes.load(Relaxed),
            entries,
            weighted_bytes,
        }
    }
}
