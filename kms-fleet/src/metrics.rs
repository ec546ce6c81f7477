//! [`FleetMetrics`]: the fleet link's Prometheus families.
//!
//! Labels are bounded: the store id (configured, not data), an outcome, an action or an
//! ignore reason. Never a key name or a version.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::message::IgnoreReason;

/// Lag buckets, seconds: 0.5 ms to 10 s.
const LAG_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// What became of one publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EncodeLabelValue)]
pub enum PublishOutcome {
    /// Stored by the stream.
    Published,
    /// The stream already had it (another publisher of the same change, within its window).
    Duplicate,
    /// Not acknowledged in time: kept in the outbox and sent again later.
    Queued,
    /// Dropped: the outbox was full.
    Dropped,
}

/// What a subscriber did with one valid message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EncodeLabelValue)]
pub enum ApplyAction {
    /// The cached copy differed (or none was known): the key was dropped.
    Dropped,
    /// The cached copy differed: the key was reloaded.
    Reloaded,
    /// The cache already held that version (or a newer one): nothing to do.
    Current,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StoreLabels {
    store: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PublishLabels {
    store: String,
    outcome: PublishOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ApplyLabels {
    store: String,
    action: ApplyAction,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct IgnoreLabels {
    store: String,
    reason: String,
}

fn lag_histogram() -> Histogram {
    Histogram::new(LAG_BUCKETS)
}

struct Families {
    lag: Family<StoreLabels, Histogram, fn() -> Histogram>,
    published: Family<PublishLabels, Counter>,
    applied: Family<ApplyLabels, Counter>,
    ignored: Family<IgnoreLabels, Counter>,
    gaps: Family<StoreLabels, Counter>,
    version_checks: Family<StoreLabels, Counter>,
    budget_remaining: Family<StoreLabels, Gauge>,
    budget_waits: Family<StoreLabels, Counter>,
    budget_refused: Family<StoreLabels, Counter>,
    link_up: Gauge,
    up: AtomicBool,
}

/// The fleet's metric families, shared (cheap to clone) by every publisher, subscriber,
/// watcher and budget of the process. Register them once with
/// [`register`](Self::register).
///
/// | name (prefix `kms_fleet_`) | type | labels |
/// |---|---|---|
/// | `invalidation_lag_seconds` | histogram | store |
/// | `messages_published_total` | counter | store, outcome |
/// | `messages_applied_total` | counter | store, action |
/// | `messages_ignored_total` | counter | store, reason |
/// | `gaps_total` | counter | store |
/// | `version_checks_total` | counter | store |
/// | `budget_remaining` | gauge (whole tokens) | store |
/// | `budget_waits_total` | counter | store |
/// | `budget_refused_total` | counter | store |
/// | `link_up` | gauge (1 or 0) | |
#[derive(Clone)]
pub struct FleetMetrics {
    families: Arc<Families>,
}

impl Default for FleetMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for FleetMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetMetrics")
            .field("link_up", &self.link_up())
            .finish_non_exhaustive()
    }
}

fn store(store: &str) -> StoreLabels {
    StoreLabels {
        store: store.to_owned(),
    }
}

impl FleetMetrics {
    /// New, unregistered families.
    pub fn new() -> Self {
        Self {
            families: Arc::new(Families {
                lag: Family::new_with_constructor(lag_histogram),
                published: Family::default(),
                applied: Family::default(),
                ignored: Family::default(),
                gaps: Family::default(),
                version_checks: Family::default(),
                budget_remaining: Family::default(),
                budget_waits: Family::default(),
                budget_refused: Family::default(),
                link_up: Gauge::default(),
                up: AtomicBool::new(false),
            }),
        }
    }

    /// Registers every family under `kms_fleet_` in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let f = &self.families;
        let r = registry.sub_registry_with_prefix("kms_fleet");
        r.register(
            "invalidation_lag_seconds",
            "Time from a change's publication to its application in this cache",
            f.lag.clone(),
        );
        r.register(
            "messages_published",
            "Invalidation messages published, by outcome",
            f.published.clone(),
        );
        r.register(
            "messages_applied",
            "Valid invalidation messages received, by what was done",
            f.applied.clone(),
        );
        r.register(
            "messages_ignored",
            "Invalidation messages ignored, by reason",
            f.ignored.clone(),
        );
        r.register(
            "gaps",
            "Times the stream no longer held the next sequence (every cached key revalidated)",
            f.gaps.clone(),
        );
        r.register(
            "version_checks",
            "Backend version checks made by this process's watcher",
            f.version_checks.clone(),
        );
        r.register(
            "budget_remaining",
            "Whole tokens left in the request budget",
            f.budget_remaining.clone(),
        );
        r.register(
            "budget_waits",
            "Backend calls that waited for a budget token",
            f.budget_waits.clone(),
        );
        r.register(
            "budget_refused",
            "Backend calls refused because no token came within the wait",
            f.budget_refused.clone(),
        );
        r.register(
            "link_up",
            "1 while the connection to NATS is up",
            f.link_up.clone(),
        );
    }

    pub(crate) fn observe_lag(&self, store_id: &str, seconds: f64) {
        self.families
            .lag
            .get_or_create(&store(store_id))
            .observe(seconds);
    }

    pub(crate) fn published(&self, store_id: &str, outcome: PublishOutcome) {
        self.families
            .published
            .get_or_create(&PublishLabels {
                store: store_id.to_owned(),
                outcome,
            })
            .inc();
    }

    pub(crate) fn applied(&self, store_id: &str, action: ApplyAction) {
        self.families
            .applied
            .get_or_create(&ApplyLabels {
                store: store_id.to_owned(),
                action,
            })
            .inc();
    }

    pub(crate) fn ignored(&self, store_id: &str, reason: IgnoreReason) {
        self.families
            .ignored
            .get_or_create(&IgnoreLabels {
                store: store_id.to_owned(),
                reason: reason.as_str().to_owned(),
            })
            .inc();
    }

    pub(crate) fn gap(&self, store_id: &str) {
        self.families.gaps.get_or_create(&store(store_id)).inc();
    }

    pub(crate) fn version_check(&self, store_id: &str) {
        self.families
            .version_checks
            .get_or_create(&store(store_id))
            .inc();
    }

    pub(crate) fn budget(&self, store_id: &str, remaining: f64, waited: bool, refused: bool) {
        #[allow(clippy::cast_possible_truncation)]
        let whole = remaining.floor().max(0.0) as i64;
        let labels = store(store_id);
        self.families
            .budget_remaining
            .get_or_create(&labels)
            .set(whole);
        if waited {
            self.families.budget_waits.get_or_create(&labels).inc();
        }
        if refused {
            self.families.budget_refused.get_or_create(&labels).inc();
        }
    }

    pub(crate) fn set_link_up(&self, up: bool) {
        self.families.up.store(up, Ordering::Release);
        self.families.link_up.set(i64::from(up));
    }

    /// Whether the connection to NATS is up now (what health reports).
    pub fn link_up(&self) -> bool {
        self.families.up.load(Ordering::Acquire)
    }

    /// Messages of `store_id` published with `outcome` so far.
    pub fn published_count(&self, store_id: &str, outcome: PublishOutcome) -> u64 {
        self.families
            .published
            .get_or_create(&PublishLabels {
                store: store_id.to_owned(),
                outcome,
            })
            .get()
    }

    /// Messages of `store_id` applied with `action` so far.
    pub fn applied_count(&self, store_id: &str, action: ApplyAction) -> u64 {
        self.families
            .applied
            .get_or_create(&ApplyLabels {
                store: store_id.to_owned(),
                action,
            })
            .get()
    }

    /// Messages of `store_id` ignored for `reason` so far.
    pub fn ignored_count(&self, store_id: &str, reason: IgnoreReason) -> u64 {
        self.families
            .ignored
            .get_or_create(&IgnoreLabels {
                store: store_id.to_owned(),
                reason: reason.as_str().to_owned(),
            })
            .get()
    }

    /// Gaps detected on `store_id`'s stream so far.
    pub fn gap_count(&self, store_id: &str) -> u64 {
        self.families.gaps.get_or_create(&store(store_id)).get()
    }

    /// Version checks this process's watcher made on `store_id` so far.
    pub fn version_check_count(&self, store_id: &str) -> u64 {
        self.families
            .version_checks
            .get_or_create(&store(store_id))
            .get()
    }

    /// Backend calls of `store_id` that waited for a budget token so far.
    pub fn budget_wait_count(&self, store_id: &str) -> u64 {
        self.families
            .budget_waits
            .get_or_create(&store(store_id))
            .get()
    }

    /// Backend calls of `store_id` the budget refused so far.
    pub fn budget_refused_count(&self, store_id: &str) -> u64 {
        self.families
            .budget_refused
            .get_or_create(&store(store_id))
            .get()
    }
}
