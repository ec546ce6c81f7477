//! [`OpSeries`]: the pre-resolved service-side series of one `(operation, backend, store)`,
//! shared by the store decorator and the provider decorator.

use std::sync::Arc;

use kms_core::ErrorKind;
use prometheus_client::metrics::gauge::Gauge;

use crate::families::Families;
use crate::histogram::LatencyHistogram;
use crate::labels::{DurationLabels, ErrorLabels, OperationLabels};
use crate::sharded::ShardedCounter;
use crate::status::{STATUSES, Status};

/// The pre-resolved series of one `(operation, backend, store)`.
pub(crate) struct OpSeries {
    /// Indexed by [`Status`]. `stale` is a series of `get` only; other operations keep a
    /// counter nothing registers (and nothing increments).
    pub counts: [ShardedCounter; 6],
    pub duration: LatencyHistogram,
    pub in_flight: Gauge,
}

impl OpSeries {
    /// Resolves the counters and histograms of one `(operation, backend, store)`; every status
    /// and error kind is created at 0, so the first failure is visible to `increase()`.
    pub(crate) fn resolve(
        families: &Families,
        operation: &'static str,
        backend: &'static str,
        store: &Arc<str>,
    ) -> Self {
        for kind in ErrorKind::ALL {
            drop(families.errors.get_or_create(&ErrorLabels {
                operation,
                backend,
                store: store.clone(),
                kind: kind.as_str(),
            }));
        }
        let labels = DurationLabels {
            operation,
            backend,
            store: store.clone(),
        };
        Self {
            counts: STATUSES.map(|status| {
                if status == Status::Stale.as_str() && operation != "get" {
                    return ShardedCounter::default();
                }
                families.operations.get_or_create_owned(&OperationLabels {
                    operation,
                    backend,
                    store: store.clone(),
                    status,
                })
            }),
            duration: families.duration.get_or_create_owned(&labels),
            in_flight: families.in_flight.get_or_create_owned(&labels),
        }
    }

    /// Counts one call of `nanos` in this thread's slots.
    #[inline(always)]
    pub(crate) fn observe(&self, status: Status, nanos: u64) {
        let slot = kms_core::sharded::Slot::current();
        self.duration.observe_ns_in(slot, nanos);
        self.counts[status as usize].inc_in(slot);
    }
}
