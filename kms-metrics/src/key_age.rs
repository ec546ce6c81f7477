//! `<p>_key_age_seconds{backend}`: the age of the oldest key version read in a rolling window,
//! so "rotation overdue" can alert without a per-key label.
//!
//! Two adjacent windows (current and previous) are kept in atomics; the gauge shows the larger
//! maximum, so an old key read once stays visible for between one and two windows.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::gauge::Gauge;

pub(crate) struct KeyAge {
    window_secs: u64,
    window_start: AtomicU64,
    current_max: AtomicU64,
    previous_max: AtomicU64,
}

impl KeyAge {
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            window_secs: window.as_secs().max(1),
            window_start: AtomicU64::new(0),
            current_max: AtomicU64::new(0),
            previous_max: AtomicU64::new(0),
        }
    }

    /// Records a version created at `created` as read now, and updates `gauge`.
    pub(crate) fn observe(&self, created: SystemTime, gauge: &Gauge) {
        let now = SystemTime::now();
        let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let age = now.duration_since(created).map_or(0, |d| d.as_secs());
        let start = self.window_start.load(Relaxed);
        if now_secs.saturating_sub(start) >= self.window_secs
            && self
                .window_start
                .compare_exchange(start, now_secs, Relaxed, Relaxed)
                .is_ok()
        {
            let last = self.current_max.swap(0, Relaxed);
            // A gap longer than a window leaves nothing worth carrying over.
            let carried = if now_secs.saturating_sub(start) < 2 * self.window_secs {
                last
            } else {
                0
            };
            self.previous_max.store(carried, Relaxed);
        }
        let current = self.current_max.fetch_max(age, Relaxed).max(age);
        let shown = current.max(self.previous_max.load(Relaxed));
        gauge.set(i64::try_from(shown).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_oldest_version_read() {
        let ages = KeyAge::new(Duration::from_secs(3600));
        let gauge = Gauge::default();
        let now = SystemTime::now();
        ages.observe(now - Duration::from_secs(100), &gauge);
        ages.observe(now - Duration::from_secs(5000), &gauge);
        ages.observe(now - Duration::from_secs(10), &gauge);
        assert!((5000..5010).contains(&gauge.get()), "{}", gauge.get());
    }
}
