//! What the cache holds for one key.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use kms_core::{KeyName, StoredSecret};
use quanta::Instant;

/// A cached answer: the secret, or (negative caching) the fact that the key does not exist.
#[derive(Clone)]
pub(crate) enum Answer {
    Found(StoredSecret),
    Missing,
}

/// One cache entry, held by value in the read index and borrowed by a hit, which clones only
/// the answer (the `StoredSecret`'s `Arc`s are bumped, nothing is allocated).
pub(crate) struct Entry {
    pub answer: Answer,
    /// The id of the policy slot that tracks this entry (unique per admission; a reload of an
    /// entry of the same weight keeps it). The policy removes an entry by key *and* id, so an
    /// eviction decided for an older slot of a key never removes a newer entry.
    pub id: u64,
    /// Bytes this entry accounts for in a byte-bounded cache.
    pub weight: u32,
    pub loaded_at: Instant,
    /// Fresh until then (TTL after jitter, or the negative TTL).
    pub expires_at: Instant,
    /// Servable by stale-if-error from then (its expiry, or later while a write of the key
    /// whose outcome is unknown withholds it: see [`Entry::withheld`]) ...
    pub stale_from: Instant,
    /// ... until then.
    pub stale_until: Instant,
    /// Time-to-idle bookkeeping: nanoseconds after `loaded_at` of the last read.
    last_read: AtomicU64,
    /// Set once a background refresh of this entry has started.
    pub refreshing: AtomicBool,
}

impl Entry {
    pub(crate) fn new(
        answer: Answer,
        key: &KeyName,
        now: Instant,
        fresh_for: Duration,
        max_stale: Duration,
    ) -> Self {
        let expires_at = now + fresh_for;
        let value = match &answer {
            Answer::Found(s) => s.value.len() + s.meta.version.as_ref().map_or(0, |v| v.len()),
            Answer::Missing => 0,
        };
        Self {
            weight: u32::try_from(key.as_str().len() + value + 64).unwrap_or(u32::MAX),
            answer,
            id: 0,
            loaded_at: now,
            expires_at,
            stale_from: expires_at,
            stale_until: expires_at + max_stale,
            last_read: AtomicU64::new(0),
            refreshing: AtomicBool::new(false),
        }
    }

    /// This entry as a write of its key whose outcome is unknown leaves it (the write may
    /// have landed, or land later): no longer fresh from `now`, and not servable stale before
    /// `until`, when the write has landed or never will (see `Core::unsettle`). `None` when
    /// there is nothing to keep: a remembered not-found, or a stale window over by then.
    pub(crate) fn withheld(&self, now: Instant, until: Instant) -> Option<Self> {
        let Answer::Found(secret) = &self.answer else {
            return None;
        };
        if until >= self.stale_until {
            return None;
        }
        Some(Self {
            answer: Answer::Found(secret.clone()),
            id: self.id,
            weight: self.weight,
            loaded_at: self.loaded_at,
            expires_at: self.expires_at.min(now),
            stale_from: until.max(self.stale_from),
            stale_until: self.stale_until,
            last_read: AtomicU64::new(0),
            refreshing: AtomicBool::new(false),
        })
    }

    /// Whether the entry may be served as fresh at `now`, given an optional time-to-idle (a
    /// fresh read under time-to-idle also records itself as the last read).
    #[inline]
    pub(crate) fn is_fresh(&self, now: Instant, tti: Option<Duration>) -> bool {
        if now >= self.expires_at {
            return false;
        }
        if let Some(tti) = tti {
            let last = self.loaded_at + Duration::from_nanos(self.last_read.load(Relaxed));
            if now.saturating_duration_since(last) >= tti {
                return false;
            }
            let since_load = now.saturating_duration_since(self.loaded_at).as_nanos() as u64;
            self.last_read.fetch_max(since_load, Relaxed);
        }
        true
    }
}
