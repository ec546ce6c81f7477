//! The cache's counters, readable as [`CacheStats`] and pushed to an optional observer.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use crate::observer::{CacheObserver, CacheStats, EvictionCause};

/// Shards of the hit counter. Each thread adds to its own shard (threads are dealt shards
/// round-robin on their first hit), so threads hitting the cache at once do not bounce one
/// cache line between cores; a snapshot sums the shards.
const HIT_SHARDS: usize = 16;

/// One counter on a cache line of its own (128 bytes: adjacent-line prefetch pairs lines).
#[derive(Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn shard() -> usize {
    SHARD.with(|s| {
        let shard = s.get();
        if shard < HIT_SHARDS {
            return shard;
        }
        let shard = NEXT_SHARD.fetch_add(1, Relaxed) % HIT_SHARDS;
        s.set(shard);
        shard
    })
}

#[derive(Default)]
pub(crate) struct Recorder {
    hits: [Padded; HIT_SHARDS],
    misses: AtomicU64,
    loads: AtomicU64,
    load_failures: AtomicU64,
    stale_serves: AtomicU64,
    evictions_expired: AtomicU64,
    evictions_size: AtomicU64,
    evictions_explicit: AtomicU64,
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
        self.hits[shard()].0.fetch_add(1, Relaxed);
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

    pub(crate) fn stale_serve(&self) {
        self.stale_serves.fetch_add(1, Relaxed);
        if let Some(o) = &self.observer {
            o.stale_serve();
        }
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

    pub(crate) fn size(&self, entries: u64, weighted_bytes: u64) {
        if let Some(o) = &self.observer {
            o.size(entries, weighted_bytes);
        }
    }

    pub(crate) fn snapshot(&self, entries: u64, weighted_bytes: u64) -> CacheStats {
        CacheStats {
            hits: self.hits.iter().map(|h| h.0.load(Relaxed)).sum(),
            misses: self.misses.load(Relaxed),
            loads: self.loads.load(Relaxed),
            load_failures: self.load_failures.load(Relaxed),
            stale_serves: self.stale_serves.load(Relaxed),
            evictions_expired: self.evictions_expired.load(Relaxed),
            evictions_size: self.evictions_size.load(Relaxed),
            evictions_explicit: self.evictions_explicit.load(Relaxed),
            entries,
            weighted_bytes,
        }
    }
}
