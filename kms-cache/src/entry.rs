//! What the cache holds for one key.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use kms_core::StoredSecret;
use tokio::time::Instant;

/// A cached answer: the secret, or (negative caching) the fact that the key does not exist.
#[derive(Clone)]
pub(crate) enum Answer {
    Found(StoredSecret),
    Missing,
}

/// One cache entry, held by value in moka: a hit's clone of it *is* the answer handed out
/// (the `StoredSecret`'s `Arc`s are bumped, nothing else is shared or allocated).
///
/// Freshness is decided with tokio's clock (so paused-time tests can drive it); moka's own
/// expiry only removes entries once they are past any use (TTL + max stale).
#[derive(Clone)]
pub(crate) struct Entry {
    pub answer: Answer,
    pub loaded_at: Instant,
    /// Fresh until then (TTL after jitter, or the negative TTL).
    pub expires_at: Instant,
    /// Servable by stale-if-error until then.
    pub stale_until: Instant,
    /// Bookkeeping shared by every copy of this entry; only allocated when time-to-idle or
    /// refresh-ahead is on, so the default hit path clones no extra `Arc`.
    pub shared: Option<Arc<Shared>>,
}

/// The mutable part of an entry (time-to-idle and refresh-ahead bookkeeping).
#[derive(Default)]
pub(crate) struct Shared {
    /// Time-to-idle bookkeeping: nanoseconds after `loaded_at` of the last read.
    last_read: AtomicU64,
    /// Set once a background refresh of this entry has started.
    pub refreshing: AtomicBool,
}

impl Entry {
    pub(crate) fn new(
        answer: Answer,
        now: Instant,
        fresh_for: Duration,
        max_stale: Duration,
        with_shared: bool,
    ) -> Self {
        let expires_at = now + fresh_for;
        Self {
            answer,
            loaded_at: now,
            expires_at,
            stale_until: expires_at + max_stale,
            shared: with_shared.then(Arc::default),
        }
    }

    /// Whether the entry may be served as fresh at `now`, given an optional time-to-idle.
    #[inline]
    pub(crate) fn is_fresh(&self, now: Instant, tti: Option<Duration>) -> bool {
        if now >= self.expires_at {
            return false;
        }
        if let (Some(tti), Some(shared)) = (tti, &self.shared) {
            let last = self.loaded_at + Duration::from_nanos(shared.last_read.load(Relaxed));
            if now.saturating_duration_since(last) >= tti {
                return false;
            }
            let since_load = now.saturating_duration_since(self.loaded_at).as_nanos() as u64;
            shared.last_read.fetch_max(since_load, Relaxed);
        }
        true
    }

    /// Bytes this entry accounts for in a byte-bounded cache.
    pub(crate) fn weight(&self, key_len: usize) -> u32 {
        let value = match &self.answer {
            Answer::Found(s) => s.value.len() + s.meta.version.as_ref().map_or(0, |v| v.len()),
            Answer::Missing => 0,
        };
        u32::try_from(key_len + value + 64).unwrap_or(u32::MAX)
    }
}
