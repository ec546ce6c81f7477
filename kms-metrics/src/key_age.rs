//! `<p>_key_age_seconds{backend,store}`: the age of the oldest *current* key version, so
//! "rotation overdue" can alert without a per-key label, and stops alerting once keys are
//! rotated.
//!
//! Fed by the [`BackendMonitor`](crate::BackendMonitor), below the cache: a `get` that reaches
//! the backend returns the key's current version (a cache refreshes every key it serves at
//! least once per TTL), a `store` writes a new current version, a `remove` ends the key.
//! `get_version` reads an old version on purpose and is ignored. Per key the gauge keeps the
//! current version's creation time and when the backend last said so; a key not seen for the
//! window (default 1 h) is forgotten, so a key nobody uses any more stops counting. The value
//! is computed when scraped: the age grows between reads, and falls as soon as the backend
//! returns a rotated version, whether or not anything reads the old one again.
//!
//! The table is touched only on calls that reach the backend and on scrapes, never on a cache
//! hit. At most `max_keys` (default 10,000) keys are tracked; beyond that, new keys are not.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kms_core::KeyName;
use parking_lot::Mutex;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Default [`window`](KeyAgeGauge::configure).
pub(crate) const DEFAULT_WINDOW: Duration = Duration::from_secs(3600);
/// Default most keys tracked.
pub(crate) const DEFAULT_MAX_KEYS: usize = 10_000;

struct Tracked {
    created: SystemTime,
    seen: SystemTime,
}

struct Table {
    window: Duration,
    max_keys: usize,
    keys: HashMap<KeyName, Tracked>,
}

impl Default for Table {
    fn default() -> Self {
        Self {
            window: DEFAULT_WINDOW,
            max_keys: DEFAULT_MAX_KEYS,
            keys: HashMap::new(),
        }
    }
}

impl Table {
    fn prune(&mut self, now: SystemTime) {
        let window = self.window;
        self.keys
            .retain(|_, t| now.duration_since(t.seen).unwrap_or_default() < window);
    }
}

/// The gauge; clones share the table.
#[derive(Clone, Default)]
pub(crate) struct KeyAgeGauge(Arc<Mutex<Table>>);

impl KeyAgeGauge {
    pub(crate) fn configure(&self, window: Duration, max_keys: usize) {
        let mut t = self.0.lock();
        t.window = window;
        t.max_keys = max_keys;
    }

    /// The backend said `key`'s current version was created at `created` (seen at `now`).
    pub(crate) fn current(&self, key: &KeyName, created: SystemTime, now: SystemTime) {
        let mut t = self.0.lock();
        if let Some(tracked) = t.keys.get_mut(key) {
            *tracked = Tracked { created, seen: now };
            return;
        }
        if t.keys.len() >= t.max_keys {
            t.prune(now);
            if t.keys.len() >= t.max_keys {
                return;
            }
        }
        t.keys.insert(key.clone(), Tracked { created, seen: now });
    }

    /// `key` no longer exists.
    pub(crate) fn removed(&self, key: &KeyName) {
        self.0.lock().keys.remove(key);
    }

    /// The gauge value at `now`: seconds since the oldest tracked current version was
    /// created, 0 when no key is tracked.
    pub(crate) fn age_at(&self, now: SystemTime) -> u64 {
        let mut t = self.0.lock();
        t.prune(now);
        t.keys
            .values()
            .map(|k| now.duration_since(k.created).unwrap_or_default().as_secs())
            .max()
            .unwrap_or(0)
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.0.lock().keys.len()
    }
}

impl std::fmt::Debug for KeyAgeGauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyAgeGauge").finish_non_exhaustive()
    }
}

impl TypedMetric for KeyAgeGauge {
    const TYPE: MetricType = MetricType::Gauge;
}

impl EncodeMetric for KeyAgeGauge {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let age = i64::try_from(self.age_at(SystemTime::now())).unwrap_or(i64::MAX);
        encoder.encode_gauge(&age)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// `days` before `now` (tests).
#[cfg(test)]
fn days_ago(now: SystemTime, days: u64) -> SystemTime {
    now - Duration::from_secs(days * 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> KeyName {
        KeyName::new(name).unwrap()
    }

    #[test]
    fn follows_the_current_version_not_the_oldest_ever_read() {
        let ages = KeyAgeGauge::default();
        let now = SystemTime::now();
        ages.current(&key("a"), days_ago(now, 100), now);
        ages.current(&key("b"), days_ago(now, 10), now);
        assert_eq!(ages.age_at(now) / 86_400, 100);
        // Rotation: the backend now returns a new version of `a`; nothing reads the old one.
        ages.current(&key("a"), now, now);
        assert_eq!(ages.age_at(now) / 86_400, 10);
        // The age grows with time, with no reads at all.
        let later = now + Duration::from_secs(1800);
        assert_eq!(ages.age_at(later), 10 * 86_400 + 1800);
        ages.removed(&key("b"));
        assert_eq!(ages.age_at(later), 1800);
    }

    #[test]
    fn keys_not_seen_for_a_window_are_forgotten() {
        let ages = KeyAgeGauge::default();
        ages.configure(Duration::from_secs(60), 10);
        let now = SystemTime::now();
        ages.current(&key("old"), days_ago(now, 200), now);
        assert_eq!(ages.age_at(now + Duration::from_secs(59)) / 86_400, 200);
        assert_eq!(ages.age_at(now + Duration::from_secs(61)), 0);
        assert_eq!(ages.tracked(), 0);
    }

    #[test]
    fn the_table_is_bounded() {
        let ages = KeyAgeGauge::default();
        ages.configure(Duration::from_secs(60), 3);
        let now = SystemTime::now();
        for i in 0..10 {
            ages.current(&key(&format!("k{i}")), now, now);
        }
        assert_eq!(ages.tracked(), 3);
    }
}
