//! The eviction policy: a `moka::sync::Cache` that mirrors the read index's keys with their
//! weights and decides what stays (capacity, TinyLFU admission, the weigher).
//!
//! The values live in the [`Index`] that hits read; moka holds a small [`Slot`] per key. When
//! moka drops a slot for size, its eviction listener removes the index entry with the same key
//! *and* id, so a decision about an older slot never removes a newer entry. Everything else is
//! done by the cache under its flight lock, index first: writes and invalidations remove from
//! both, the expiry sweep removes dead entries from both, and a reload of an entry of the same
//! weight keeps its slot (no moka write at all).
//!
//! moka learns about reads only under memory pressure, when it has victims to choose: from
//! 90 % of capacity on, every miss and a random one hit in [`TOUCH_EVERY`] are replayed as a
//! moka `get`, which keeps its frequency sketch and access order honest about hot keys. Below
//! that, reads never touch moka (it admits every new key while there is room).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use kms_core::KeyName;
use moka::notification::RemovalCause;

use super::entry::Entry;
use super::recorder::Recorder;
use crate::observer::EvictionCause;
use crate::settings::{Capacity, Settings};

/// The read index: every cached entry by key, read lock-free by hits.
pub(crate) type Index = papaya::HashMap<KeyName, Entry, foldhash::fast::RandomState>;

/// Under memory pressure, one hit in this many (per thread) is reported to moka.
const TOUCH_EVERY: u32 = 8;

/// What moka holds for one key.
#[derive(Clone)]
pub(crate) struct Slot {
    id: u64,
    weight: u32,
}

impl Slot {
    pub(crate) fn of(entry: &Entry) -> Self {
        Self {
            id: entry.id,
            weight: entry.weight,
        }
    }
}

pub(crate) struct Policy {
    slots: moka::sync::Cache<KeyName, Slot, foldhash::fast::RandomState>,
    /// Whether capacity is in bytes (weighted) rather than entries.
    by_bytes: bool,
    /// From this size on (entries or bytes), hits are reported to moka.
    pressure: u64,
    /// The capacity (entries or bytes).
    max: u64,
    /// What was admitted (entries, or bytes) since moka last applied its pending writes here:
    /// moka counts an insert only once its housekeeping has run, so its own size lags.
    unsettled: AtomicU64,
}

impl Policy {
    pub(crate) fn new(settings: &Settings, index: Arc<Index>, recorder: Arc<Recorder>) -> Self {
        // No moka TTL: freshness is decided on read and dead entries are swept by the cache
        // (on its own, injectable clock), so a reload can keep its slot without moka expiring
        // it from under the new entry.
        let mut builder = moka::sync::Cache::builder().eviction_listener(
            move |key: Arc<KeyName>, slot: Slot, cause| {
                // Never logs: keys and values stay out of the listener's output. Explicit
                // removals and replacements are the cache's own, counted where it makes them.
                if matches!(cause, RemovalCause::Size) {
                    let _ = index.pin().remove_if(&*key, |_, e| e.id == slot.id);
                    recorder.eviction(EvictionCause::Size);
                }
            },
        );
        let (max, by_bytes) = match settings.capacity {
            Capacity::Entries(n) => (n, false),
            Capacity::Bytes(n) => {
                builder = builder.weigher(|_: &KeyName, slot: &Slot| slot.weight);
                (n, true)
            }
        };
        // foldhash instead of SipHash: several times cheaper on short keys, and still seeded
        // per cache from a random per-process seed, so key collisions cannot be precomputed.
        let slots = builder
            .max_capacity(max)
            .build_with_hasher(foldhash::fast::RandomState::default());
        Self {
            slots,
            by_bytes,
            pressure: max - max / 10,
            max,
            unsettled: AtomicU64::new(0),
        }
    }

    /// Tracks the entry just inserted into the index under `key`. moka applies inserts (and
    /// so evicts for them) lazily, in batches; until then the index would serve entries beyond
    /// the capacity. So once what moka counts plus what was admitted since it last settled
    /// could exceed the capacity, its pending work is applied now, and the entries it evicts
    /// leave the index before this miss returns. Below that, admission costs one moka insert.
    pub(crate) fn admit(&self, key: &KeyName, slot: Slot) {
        let added = if self.by_bytes {
            u64::from(slot.weight)
        } else {
            1
        };
        self.slots.insert(key.clone(), slot);
        let unsettled = self.unsettled.fetch_add(added, Relaxed) + added;
        if self.size().saturating_add(unsettled) > self.max {
            self.settle();
        }
    }

    /// Whether moka holds the slot `id` for `key` now.
    pub(crate) fn tracks(&self, key: &KeyName, id: u64) -> bool {
        self.slots.get(key).is_some_and(|slot| slot.id == id)
    }

    /// Stops tracking `key` (already removed from the index).
    pub(crate) fn remove(&self, key: &KeyName) {
        self.slots.invalidate(key);
    }

    /// Stops tracking every key (the index was cleared).
    pub(crate) fn clear(&self) {
        self.slots.invalidate_all();
        self.slots.run_pending_tasks();
    }

    /// A hit on `key`: nothing, unless the cache is nearly full (see the module docs).
    #[inline]
    pub(crate) fn on_hit(&self, key: &KeyName) {
        if self.size() >= self.pressure {
            self.touch(key);
        }
    }

    #[cold]
    #[inline(never)]
    fn touch(&self, key: &KeyName) {
        // Random, not every n-th: a fixed stride would alias with a regular access pattern
        // (ten keys read in turn, every 8th hit reported, never reports half of them).
        if fastrand::u32(..TOUCH_EVERY) == 0 {
            let _ = self.slots.get(key);
        }
    }

    /// A miss on `key`: under memory pressure, reported to moka as a bare moka cache's `get`
    /// would, so a key that keeps missing gains frequency until moka admits it over a colder
    /// victim. (Below the threshold moka admits every new key anyway.)
    pub(crate) fn on_miss(&self, key: &KeyName) {
        if self.size() >= self.pressure {
            let _ = self.slots.get(key);
        }
    }

    #[inline]
    fn size(&self) -> u64 {
        if self.by_bytes {
            self.slots.weighted_size()
        } else {
            self.slots.entry_count()
        }
    }

    /// Settles moka's pending work and returns the exact entry count and weighted size.
    pub(crate) fn settle(&self) -> (u64, u64) {
        self.unsettled.store(0, Relaxed);
        self.slots.run_pending_tasks();
        (self.slots.entry_count(), self.slots.weighted_size())
    }

    /// Every slot moka holds now, as (key, entry id).
    #[cfg(test)]
    pub(crate) fn slots(&self) -> Vec<(KeyName, u64)> {
        self.slots
            .iter()
            .map(|(k, s)| ((*k).clone(), s.id))
            .collect()
    }

    /// The entry count, possibly lagging behind pending work.
    pub(crate) fn approximate_len(&self) -> u64 {
        self.slots.entry_count()
    }
}
