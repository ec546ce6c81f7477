//! `<p>_key_cache_stale_age_seconds{backend,store}`: how far past its TTL the oldest value the
//! cache is serving stale is, so dashboards and alerts see the age of what an outage serves,
//! not only that it serves.
//!
//! Fed by the cache observer: every stale serve reports its staleness (how long the value had
//! been expired); the gauge holds the largest staleness served since the cache last loaded a
//! value from the backend. It returns to 0 when a load succeeds (fresh values are served
//! again), and when no stale value has been served for [`IDLE`]: a service that stopped
//! reading is not serving stale, whatever it served last. Computed when scraped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// With no stale serve for this long, the gauge reads 0.
pub(crate) const IDLE: Duration = Duration::from_secs(60);

struct State {
    /// The largest staleness served in this episode, in nanoseconds; 0 when none.
    max_ns: AtomicU64,
    /// When the last stale serve was, as a raw reading of `clock`.
    last: AtomicU64,
    clock: quanta::Clock,
}

/// The gauge; clones share the state.
#[derive(Clone)]
pub(crate) struct StaleAgeGauge(Arc<State>);

impl Default for StaleAgeGauge {
    fn default() -> Self {
        Self::with_clock(quanta::Clock::new())
    }
}

impl StaleAgeGauge {
    /// A gauge reading `clock` (tests pass a mocked one).
    pub(crate) fn with_clock(clock: quanta::Clock) -> Self {
        Self(Arc::new(State {
            max_ns: AtomicU64::new(0),
            last: AtomicU64::new(0),
            clock,
        }))
    }

    /// A value `expired_for` past its TTL was served stale.
    pub(crate) fn served(&self, expired_for: Duration) {
        let ns = u64::try_from(expired_for.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        let now = self.0.clock.raw();
        let last = self.0.last.swap(now, Relaxed);
        if self.idle(last, now) {
            // A new episode: what an earlier one served says nothing about now.
            self.0.max_ns.store(ns, Relaxed);
        } else {
            self.0.max_ns.fetch_max(ns, Relaxed);
        }
    }

    /// Whether no stale serve happened between raw readings `last` and `now` for [`IDLE`].
    fn idle(&self, last: u64, now: u64) -> bool {
        u128::from(self.0.clock.delta_as_nanos(last, now)) >= IDLE.as_nanos()
    }

    /// A load succeeded: fresh values are served again.
    pub(crate) fn fresh(&self) {
        self.0.max_ns.store(0, Relaxed);
    }

    /// The value now, in seconds.
    pub(crate) fn seconds(&self) -> f64 {
        let max = self.0.max_ns.load(Relaxed);
        if max == 0 {
            return 0.0;
        }
        if self.idle(self.0.last.load(Relaxed), self.0.clock.raw()) {
            return 0.0;
        }
        max as f64 / 1e9
    }
}

impl std::fmt::Debug for StaleAgeGauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StaleAgeGauge")
            .field(&self.seconds())
            .finish()
    }
}

impl TypedMetric for StaleAgeGauge {
    const TYPE: MetricType = MetricType::Gauge;
}

impl EncodeMetric for StaleAgeGauge {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.seconds())
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_staleness_until_a_load_succeeds_or_serving_stops() {
        let (clock, time) = quanta::Clock::mock();
        let gauge = StaleAgeGauge::with_clock(clock);
        assert_eq!(gauge.seconds(), 0.0);
        gauge.served(Duration::from_secs(30));
        gauge.served(Duration::from_secs(5));
        assert_eq!(gauge.seconds(), 30.0);
        time.increment(Duration::from_secs(10));
        gauge.served(Duration::from_secs(40));
        assert_eq!(gauge.seconds(), 40.0);
        gauge.fresh();
        assert_eq!(gauge.seconds(), 0.0);
        gauge.served(Duration::from_millis(100));
        assert_eq!(gauge.seconds(), 0.1);
        time.increment(IDLE);
        assert_eq!(gauge.seconds(), 0.0, "no stale serve for a minute");
        gauge.served(Duration::from_secs(1));
        assert_eq!(gauge.seconds(), 1.0, "a new episode");
    }
}
