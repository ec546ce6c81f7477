//! `<p>_key_age_seconds{backend}`: the age of the oldest key version read in a rolling window,
//! so "rotation overdue" can alert without a per-key label.
//!
//! Two adjacent windows (current and previous) keep the oldest creation time read in atomics;
//! the gauge shows the age of the older, so an old key read once stays visible for between one
//! and two windows. The wall clock is read at most once per second, or when a read brings an
//! older version: a hot `get` usually costs two relaxed atomic loads here and writes nothing,
//! so threads reading keys concurrently do not bounce these cache lines between cores.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::gauge::Gauge;

use crate::clock::LatencyClock;

const EMPTY: u64 = u64::MAX;

pub(crate) struct KeyAge {
    window_secs: u64,
    clock: LatencyClock,
    /// Raw clock reading at creation.
    base: u64,
    /// Seconds after `base` of the last gauge refresh.
    refreshed_at: AtomicU64,
    window_start: AtomicU64,
    current_oldest: AtomicU64,
    previous_oldest: AtomicU64,
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl KeyAge {
    pub(crate) fn new(window: Duration, clock: LatencyClock) -> Self {
        Self {
            window_secs: window.as_secs().max(1),
            base: clock.raw(),
            clock,
            refreshed_at: AtomicU64::new(EMPTY),
            window_start: AtomicU64::new(0),
            current_oldest: AtomicU64::new(EMPTY),
            previous_oldest: AtomicU64::new(EMPTY),
        }
    }

    /// Records a version created at `created`, read at raw clock reading `at`, and updates
    /// `gauge`.
    #[inline]
    pub(crate) fn observe(&self, created: SystemTime, at: u64, gauge: &Gauge) {
        let created = unix_secs(created);
        let second = self.clock.nanos_between(self.base, at) / 1_000_000_000;
        // Loads first: the common case (not older, already refreshed this second) writes nothing.
        if created >= self.current_oldest.load(Relaxed) && self.refreshed_at.load(Relaxed) == second
        {
            return;
        }
        self.refresh(created, second, gauge);
    }

    #[cold]
    #[inline(never)]
    fn refresh(&self, created: u64, second: u64, gauge: &Gauge) {
        let was_oldest = self.current_oldest.fetch_min(created, Relaxed);
        if created >= was_oldest && self.refreshed_at.swap(second, Relaxed) == second {
            return;
        }
        let now = unix_secs(SystemTime::now());
        let start = self.window_start.load(Relaxed);
        if now.saturating_sub(start) >= self.window_secs
            && self
                .window_start
                .compare_exchange(start, now, Relaxed, Relaxed)
                .is_ok()
        {
            let last = self.current_oldest.swap(created, Relaxed);
            // A gap longer than a window leaves nothing worth carrying over.
            let carried = if now.saturating_sub(start) < 2 * self.window_secs {
                last
            } else {
                EMPTY
            };
            self.previous_oldest.store(carried, Relaxed);
        }
        let oldest = self
            .current_oldest
            .load(Relaxed)
            .min(self.previous_oldest.load(Relaxed));
        if oldest != EMPTY {
            gauge.set(i64::try_from(now.saturating_sub(oldest)).unwrap_or(i64::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_oldest_version_read() {
        let clock = LatencyClock::new();
        let ages = KeyAge::new(Duration::from_secs(3600), clock.clone());
        let gauge = Gauge::default();
        let now = SystemTime::now();
        ages.observe(now - Duration::from_secs(100), clock.raw(), &gauge);
        assert!((100..110).contains(&gauge.get()), "{}", gauge.get());
        // An older version updates the gauge at once, within the same second.
        ages.observe(now - Duration::from_secs(5000), clock.raw(), &gauge);
        assert!((5000..5010).contains(&gauge.get()), "{}", gauge.get());
        // A newer one does not lower it.
        ages.observe(now - Duration::from_secs(10), clock.raw(), &gauge);
        assert!((5000..5010).contains(&gauge.get()), "{}", gauge.get());
    }
}
