//! `<p>_key_age_seconds{backend}`: the age of the oldest key version read in a rolling window,
//! so "rotation overdue" can alert without a per-key label.
//!
//! Two adjacent windows (current and previous) keep the oldest creation time read in atomics;
//! the gauge shows the age of the older, so an old key read once stays visible for between one
//! and two windows. The wall clock is read at most once per second, or when a read brings an
//! older version: a hot `get` usually costs two relaxed atomic loads and two comparisons here
//! and writes nothing, so threads reading keys concurrently do not bounce these cache lines
//! between cores. The once-a-second gate compares the latency clock's raw end reading (which
//! the decorator already has) with a raw deadline, so nothing is scaled to nanoseconds per call.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::gauge::Gauge;

use crate::clock::LatencyClock;

const EMPTY: u64 = u64::MAX;

pub(crate) struct KeyAge {
    window_secs: u64,
    /// Latency-clock raw units per second.
    raw_per_second: u64,
    /// The raw reading from which the next refresh may run (0: at once).
    refresh_due: AtomicU64,
    window_start: AtomicU64,
    current_oldest: AtomicU64,
    previous_oldest: AtomicU64,
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl KeyAge {
    pub(crate) fn new(window: Duration, clock: &LatencyClock) -> Self {
        Self {
            window_secs: window.as_secs().max(1),
            raw_per_second: clock.raw_per_second(),
            refresh_due: AtomicU64::new(0),
            window_start: AtomicU64::new(0),
            current_oldest: AtomicU64::new(EMPTY),
            previous_oldest: AtomicU64::new(EMPTY),
        }
    }

    /// Records a version created at `created`, read at raw clock reading `at`, and updates
    /// `gauge`.
    #[inline]
    pub(crate) fn observe(&self, created: SystemTime, at: u64, gauge: &Gauge) {
        // Loads first: the common case (refreshed less than a second ago, not older) writes
        // nothing. `created` is compared as a time: building the bound from the stored seconds
        // costs less than turning `created` into seconds (a `duration_since` call). No bound
        // (nothing read yet) or a time before the epoch takes the slow path, which is right.
        if at < self.refresh_due.load(Relaxed)
            && UNIX_EPOCH
                .checked_add(Duration::from_secs(self.current_oldest.load(Relaxed)))
                .is_some_and(|oldest| created >= oldest)
        {
            return;
        }
        self.refresh(unix_secs(created), at, gauge);
    }

    #[cold]
    #[inline(never)]
    fn refresh(&self, created: u64, at: u64, gauge: &Gauge) {
        let was_oldest = self.current_oldest.fetch_min(created, Relaxed);
        let due = self.refresh_due.load(Relaxed);
        let next = at.saturating_add(self.raw_per_second);
        // Not older: refresh only if the second is up and no other thread claimed it first.
        if created >= was_oldest
            && (at < due
                || self
                    .refresh_due
                    .compare_exchange(due, next, Relaxed, Relaxed)
                    .is_err())
        {
            return;
        }
        if created < was_oldest {
            self.refresh_due.fetch_max(next, Relaxed);
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
        let ages = KeyAge::new(Duration::from_secs(3600), &clock);
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

    #[test]
    fn refreshes_at_most_once_a_second_unless_older() {
        let clock = LatencyClock::new();
        let second = clock.raw_per_second();
        let ages = KeyAge::new(Duration::from_secs(3600), &clock);
        let gauge = Gauge::default();
        let created = SystemTime::now() - Duration::from_secs(100);
        let t0 = clock.raw();
        ages.observe(created, t0, &gauge);
        assert!((100..110).contains(&gauge.get()), "{}", gauge.get());
        // Within the second a read of the same version does not refresh the gauge...
        gauge.set(-1);
        ages.observe(created, t0 + second / 2, &gauge);
        assert_eq!(gauge.get(), -1);
        // ...a second later it does.
        ages.observe(created, t0 + second + 1, &gauge);
        assert!((100..110).contains(&gauge.get()), "{}", gauge.get());
    }

    #[test]
    fn raw_per_second_matches_the_clock_scaling() {
        let clock = LatencyClock::new();
        let per_second = clock.raw_per_second();
        let nanos = clock.nanos_between(1_000, 1_000 + per_second);
        assert!(nanos.abs_diff(1_000_000_000) < 1_000, "{nanos}");
    }
}
