//! [`LatencyHistogram`]: a lock-free latency histogram with the [`DURATION_BUCKETS`], encoded
//! as an OpenMetrics histogram.
//!
//! `prometheus_client::metrics::histogram::Histogram` takes a mutex on every `observe` (and
//! converts to `f64` and walks a `Vec`); under two threads hitting the same series that lock is
//! the first thing to contend. This one keeps a fixed array of atomic bucket counters and the
//! sum in integer nanoseconds: an observation is a short scan of constant bounds and two
//! relaxed updates, never a lock. The count is the sum of the buckets, computed at scrape
//! time, so `_count` always equals the `+Inf` bucket. Buckets and sum are kept per thread slot
//! ([`kms_core::sharded`]): concurrent observations do not share a cache line, and a thread
//! that owns its slot updates it with a plain load and store ([`Slot::add`]), no locked
//! instruction.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use kms_core::sharded::{PerSlot, Slot};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

use crate::buckets::DURATION_BUCKETS;

const N: usize = DURATION_BUCKETS.len();

/// The bucket upper bounds in nanoseconds (`DURATION_BUCKETS` are in seconds).
const BOUNDS_NS: [u64; N] = {
    let mut out = [0u64; N];
    let mut i = 0;
    while i < N {
        // Rounded: 0.000_05 s is 50_000 ns, not 49_999.
        out[i] = (DURATION_BUCKETS[i] * 1e9 + 0.5) as u64;
        i += 1;
    }
    out
};

/// One thread slot: the sum first, so that it shares a line with the first buckets.
#[derive(Default)]
struct Buckets {
    sum_ns: AtomicU64,
    /// Non-cumulative counts; the last is `+Inf`.
    buckets: [AtomicU64; N + 1],
}

/// A histogram of durations over [`DURATION_BUCKETS`]; cloning shares the series.
#[derive(Clone, Default)]
pub(crate) struct LatencyHistogram {
    slots: Arc<PerSlot<Buckets>>,
}

impl LatencyHistogram {
    /// Records one duration, in nanoseconds, in `slot` (this thread's [`Slot::current`]).
    #[inline]
    pub(crate) fn observe_ns_in(&self, slot: Slot, ns: u64) {
        // Most observations land in the first buckets: a forward scan beats a binary search.
        let mut i = 0;
        while i < N && ns > BOUNDS_NS[i] {
            i += 1;
        }
        let cells = self.slots.get(slot);
        slot.add(&cells.buckets[i], 1);
        slot.add(&cells.sum_ns, ns);
    }

    /// Records one duration, in nanoseconds, in this thread's slot.
    pub(crate) fn observe_ns(&self, ns: u64) {
        self.observe_ns_in(Slot::current(), ns);
    }

    /// Observations so far.
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.slots
            .iter()
            .flat_map(|s| &s.buckets)
            .map(|b| b.load(Relaxed))
            .sum()
    }
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHistogram").finish_non_exhaustive()
    }
}

impl TypedMetric for LatencyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let mut buckets = [(f64::INFINITY, 0u64); N + 1];
        for (i, bucket) in buckets.iter_mut().enumerate() {
            if i < N {
                bucket.0 = DURATION_BUCKETS[i];
            }
            bucket.1 = self.slots.iter().map(|s| s.buckets[i].load(Relaxed)).sum();
        }
        let count = buckets.iter().map(|b| b.1).sum();
        let sum_ns: u64 = self.slots.iter().map(|s| s.sum_ns.load(Relaxed)).sum();
        let sum = sum_ns as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::registry::Registry;

    #[test]
    fn bounds_are_exact_nanoseconds() {
        assert_eq!(BOUNDS_NS[0], 50_000);
        assert_eq!(BOUNDS_NS[N - 1], 10_000_000_000);
        assert!(BOUNDS_NS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn exact_under_concurrent_observations() {
        let h = LatencyHistogram::default();
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let h = &h;
                s.spawn(move || (0..10_000).for_each(|_| h.observe_ns(t * 100_000)));
            }
        });
        assert_eq!(h.count(), 80_000);
        let sum: u64 = h.slots.iter().map(|s| s.sum_ns.load(Relaxed)).sum();
        assert_eq!(sum, (0..8).sum::<u64>() * 100_000 * 10_000);
        // t = 0 lands in the first bucket, t = 1 (100 µs) on the second bound.
        let first: u64 = h.slots.iter().map(|s| s.buckets[0].load(Relaxed)).sum();
        assert_eq!(first, 10_000);
    }

    #[test]
    fn encodes_like_a_prometheus_histogram() {
        let h = LatencyHistogram::default();
        h.observe_ns(50_000); // on the first bound: first bucket
        h.observe_ns(50_001);
        h.observe_ns(20_000_000_000); // +Inf
        let mut registry = Registry::default();
        registry.register("d_seconds", "help", h.clone());
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert_eq!(h.count(), 3);
        assert!(text.contains("d_seconds_count 3\n"), "{text}");
        assert!(text.contains("d_seconds_sum 20.000100001\n"), "{text}");
        assert!(
            text.contains("d_seconds_bucket{le=\"0.00005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("d_seconds_bucket{le=\"0.0001\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("d_seconds_bucket{le=\"10.0\"} 2\n"), "{text}");
        assert!(text.contains("d_seconds_bucket{le=\"+Inf\"} 3\n"), "{text}");
    }
}
