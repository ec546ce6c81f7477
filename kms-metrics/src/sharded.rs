//! [`ShardedCounter`]: `kms_core::sharded::ShardedCounter` (per-thread slots with exclusive
//! leases, see [`kms_core::sharded`]) shared between clones and encoded as an OpenMetrics
//! counter, for the operation counters of the hot path.

use std::sync::Arc;

use kms_core::sharded::{self, Slot};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// A monotonic counter, sharded per thread; cloning shares the series.
#[derive(Clone, Default)]
pub(crate) struct ShardedCounter(Arc<sharded::ShardedCounter>);

impl ShardedCounter {
    /// Adds one in `slot`, this thread's [`Slot::current`].
    #[inline]
    pub(crate) fn inc_in(&self, slot: Slot) {
        self.0.inc_in(slot);
    }

    /// The total over every slot.
    pub(crate) fn get(&self) -> u64 {
        self.0.get()
    }
}

impl std::fmt::Debug for ShardedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl TypedMetric for ShardedCounter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for ShardedCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<NoLabelSet, _, u64>(&self.get(), None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_series_and_encode_its_total() {
        let c = ShardedCounter::default();
        let clone = c.clone();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| (0..1000).for_each(|_| clone.inc_in(Slot::current())));
            }
        });
        assert_eq!(c.get(), 4000);
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("ops", "help", c);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("ops_total 4000\n"), "{text}");
    }
}
