//! Per-thread shards for the hot-path series, so that threads recording into the same series
//! at once do not fight over one cache line.
//!
//! A plain atomic counter shared by every thread costs little alone, but with two cores
//! incrementing it the line ping-pongs between them on every call. Each series here keeps
//! [`SHARDS`] cache-line-aligned slots; a thread picks its slot once (round robin, in a
//! thread-local) and only ever writes that one. A scrape sums the slots. Threads beyond
//! [`SHARDS`] share slots, which is still correct, only less contention-free.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Slots per series.
pub(crate) const SHARDS: usize = 16;

/// A value on its own cache lines (128 bytes: adjacent-line prefetch pairs 64-byte lines).
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub T);

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's slot.
#[inline]
pub(crate) fn shard() -> usize {
    SHARD.with(|s| {
        let i = s.get();
        if i < SHARDS {
            i
        } else {
            let i = NEXT_SHARD.fetch_add(1, Relaxed) % SHARDS;
            s.set(i);
            i
        }
    })
}

/// A monotonic counter, sharded per thread; encoded as an OpenMetrics counter.
#[derive(Clone, Default)]
pub(crate) struct ShardedCounter {
    slots: Arc<[Padded<AtomicU64>; SHARDS]>,
}

impl ShardedCounter {
    /// Adds one, in this thread's slot.
    #[inline]
    pub(crate) fn inc_in(&self, shard: usize) {
        self.slots[shard].0.fetch_add(1, Relaxed);
    }

    /// The total over every slot.
    pub(crate) fn get(&self) -> u64 {
        self.slots.iter().map(|s| s.0.load(Relaxed)).sum()
    }
}

impl std::fmt::Debug for ShardedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ShardedCounter").field(&self.get()).finish()
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
    fn slots_are_summed_and_threads_spread() {
        let c = ShardedCounter::default();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        c.inc_in(shard());
                    }
                });
            }
        });
        assert_eq!(c.get(), 4000);
        assert!(c.slots.iter().filter(|s| s.0.load(Relaxed) > 0).count() > 1);
        assert_eq!(std::mem::align_of::<Padded<AtomicU64>>(), 128);
    }
}
