//! `<p>_key_age_seconds{backend}`: the age of the oldest key version read in a rolling window,
//! so "rotation overdue" can alert without a per-key label.
//!
//! Two adjacent windows (current and previous) keep the oldest creation time read in atomics;
//! the gauge shows the age of the older, so an old key read once stays visible for between one
//! and two windows. The wall clock is read at most once per second, or when a read brings an
//! older version: a hot `get` usually costs two atomic loads here.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::gauge::Gauge;
use tokio::time::Instant;

const EMPTY: u64 = u64::MAX;

pub(crate) struct KeyAge {
    window_secs: u64,
    base: Instant,
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
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            window_secs: window.as_secs().max(1),
            base: Instant::now(),
            refreshed_at: AtomicU64::new(EMPTY),
            window_start: AtomicU64::new(0),
            current_oldest: AtomicU64::new(EMPTY),
            previous_oldest: AtomicU64::new(EMPTY),
        }
    }

    /// Records a version created at `created`, read at `at`, and updates `gauge`.
    pub(crate) fn observe(&self, created: SystemTime, at: Instant, gauge: &Gauge) {
        let created = unix_secs(created);
        let was_oldest = self.current_oldest.fetch_min(created, Relaxed);
        let second = at.saturating_duration_since(self.base).as_secs();
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
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let ages = KeyAge::new(Duration::from_secs(3600));
            let gauge = Gauge::default();
            let now = SystemTime::now();
            ages.observe(now - Duration::from_secs(100), Instant::now(), &gauge);
            assert!((100..110).contains(&gauge.get()), "{}", gauge.get());
            // An older version updates the gauge at once, within the same second.
            ages.observe(now - Duration::from_secs(5000), Instant::now(), &gauge);
            assert!((5000..5010).contains(&gauge.get()), "{}", gauge.get());
            // A newer one does not lower it.
            ages.observe(now - Duration::from_secs(10), Instant::now(), &gauge);
            assert!((5000..5010).contains(&gauge.get()), "{}", gauge.get());
        });
    }
}
