//! [`VersionFloors`]: per key, the newest version a stack has returned (or written), in a
//! bounded map; shared by the monotonic-reads layer and the failover layer.
//!
//! The whole story is on [`VersionFloors`] (this module is private; the type is re-exported
//! at the crate root).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use crate::key_name::KeyName;
use crate::secret::SecretMeta;

/// The newest version of each key a stack has returned or written: the floor no later read
/// may go below.
///
/// Versions are compared by what the backend gives:
///
/// - **numeric version ids** (Vault KV v2 `"7"`, memory): by number;
/// - otherwise **creation times** (AWS Secrets Manager's version ids are UUIDs, so its
///   `created_at` orders versions; a replica Region keeps the primary's creation dates);
/// - an answer with neither (KV v1, the keyring) cannot be ordered and is always accepted.
///
/// # Memory
///
/// At most [`capacity`](Self::capacity) keys are remembered (default
/// [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY), about 100 bytes each plus the name). When a
/// new key arrives at capacity, the key remembered longest ago is forgotten (first in, first
/// out): its reads are no longer checked until it is read again, and the first answer after
/// that sets a new floor. So the guarantee holds for the `capacity` keys most recently first
/// seen; size it to the working set of keys. Clones share the map.
#[derive(Clone)]
pub struct VersionFloors {
    shared: Arc<Shared>,
}

struct Shared {
    capacity: usize,
    map: Mutex<Map>,
    behind: AtomicU64,
}

#[derive(Default)]
struct Map {
    floors: HashMap<KeyName, Floor>,
    order: VecDeque<KeyName>,
}

/// A version, as far as it can be ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Floor {
    number: Option<u64>,
    created: Option<SystemTime>,
}

impl Floor {
    fn of(meta: &SecretMeta) -> Option<Self> {
        let number = meta.version.as_deref().and_then(|v| v.parse::<u64>().ok());
        let floor = Self {
            number,
            created: meta.created_at,
        };
        (floor.number.is_some() || floor.created.is_some()).then_some(floor)
    }

    /// Whether `self` is strictly older than `other`, where the two can be ordered.
    fn older_than(self, other: Self) -> bool {
        match (self.number, other.number) {
            (Some(a), Some(b)) => a < b,
            _ => match (self.created, other.created) {
                (Some(a), Some(b)) => a < b,
                _ => false,
            },
        }
    }
}

impl Default for VersionFloors {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl VersionFloors {
    /// How many keys are remembered by default.
    pub const DEFAULT_CAPACITY: usize = 10_000;

    /// Floors for at most `capacity` keys (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                capacity: capacity.max(1),
                map: Mutex::new(Map::default()),
                behind: AtomicU64::new(0),
            }),
        }
    }

    /// How many keys are remembered at most.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// How many keys are remembered now.
    pub fn len(&self) -> usize {
        self.lock().floors.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many answers were refused as older than their key's floor, since this was made.
    pub fn behind_count(&self) -> u64 {
        self.shared.behind.load(Ordering::Relaxed)
    }

    /// Whether `meta` is older than the newest version of `key` returned or written so far.
    /// Counts it when it is ([`behind_count`](Self::behind_count)).
    pub fn is_behind(&self, key: &KeyName, meta: &SecretMeta) -> bool {
        let Some(answer) = Floor::of(meta) else {
            return false;
        };
        let behind = self
            .lock()
            .floors
            .get(key)
            .is_some_and(|floor| answer.older_than(*floor));
        if behind {
            self.shared.behind.fetch_add(1, Ordering::Relaxed);
        }
        behind
    }

    /// Raises `key`'s floor to `meta` if it is newer (a version returned to a caller, or the
    /// version a write created).
    pub fn raise(&self, key: &KeyName, meta: &SecretMeta) {
        let Some(new) = Floor::of(meta) else { return };
        let mut map = self.lock();
        if let Some(floor) = map.floors.get_mut(key) {
            if floor.older_than(new) || *floor == new {
                *floor = new;
            } else if !new.older_than(*floor) {
                // Not comparable with the kept floor (one has a number, the other a time):
                // keep what both say.
                floor.number = floor.number.or(new.number);
                floor.created = floor.created.max(new.created);
            }
            return;
        }
        while map.floors.len() >= self.shared.capacity {
            match map.order.pop_front() {
                Some(oldest) => {
                    map.floors.remove(&oldest);
                }
                None => break,
            }
        }
        map.floors.insert(key.clone(), new);
        map.order.push_back(key.clone());
    }

    /// Forgets `key` (it was removed: a key created again starts its versions anew).
    pub fn forget(&self, key: &KeyName) {
        let mut map = self.lock();
        if map.floors.remove(key).is_some() {
            map.order.retain(|k| k != key);
        }
    }

    /// Whether `self` and `other` are the same floors (clones of one another).
    pub fn same_as(&self, other: &VersionFloors) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        self.shared
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for VersionFloors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VersionFloors")
            .field("capacity", &self.capacity())
            .field("keys", &self.len())
            .field("behind", &self.behind_count())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(name: &str) -> KeyName {
        KeyName::new(name).unwrap()
    }

    #[test]
    fn numeric_versions_and_creation_times_set_floors() {
        let floors = VersionFloors::new(10);
        let a = key("a");
        assert!(!floors.is_behind(&a, &SecretMeta::with_version("1")));
        floors.raise(&a, &SecretMeta::with_version("3"));
        assert!(floors.is_behind(&a, &SecretMeta::with_version("2")));
        assert!(!floors.is_behind(&a, &SecretMeta::with_version("3")));
        assert!(!floors.is_behind(&a, &SecretMeta::with_version("4")));
        floors.raise(&a, &SecretMeta::with_version("2"));
        assert!(
            floors.is_behind(&a, &SecretMeta::with_version("2")),
            "floors never go down"
        );

        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let b = key("b");
        floors.raise(&b, &SecretMeta::with_version("uuid-2").created_at(t0));
        assert!(floors.is_behind(
            &b,
            &SecretMeta::with_version("uuid-1").created_at(t0 - Duration::from_secs(1))
        ));
        assert!(!floors.is_behind(&b, &SecretMeta::with_version("uuid-3").created_at(t0)));
        // No version and no time: cannot be ordered, always accepted.
        assert!(!floors.is_behind(&b, &SecretMeta::default()));
        assert_eq!(floors.behind_count(), 3);

        floors.forget(&a);
        assert!(!floors.is_behind(&a, &SecretMeta::with_version("1")));
    }

    #[test]
    fn memory_is_bounded_first_in_first_out() {
        let floors = VersionFloors::new(2);
        for name in ["a", "b", "c"] {
            floors.raise(&key(name), &SecretMeta::with_version("5"));
        }
        assert_eq!(floors.len(), 2);
        // "a" was forgotten: an older answer for it is accepted again.
        assert!(!floors.is_behind(&key("a"), &SecretMeta::with_version("1")));
        assert!(floors.is_behind(&key("c"), &SecretMeta::with_version("1")));
    }
}
