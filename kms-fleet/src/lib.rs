#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

// Imports run one way: `watch` → `publish` → `link` → `subject`, `message`, `metrics` (leaves);
// `subscribe` → `link` and the leaves; `budget` → `metrics`.
mod budget;
mod link;
mod message;
mod metrics;
mod publish;
mod subject;
mod subscribe;
mod watch;

pub use budget::bucket::{
    AWS_SECRETS_MANAGER_RPS, DEFAULT_MAX_WAIT, RequestBudget, RequestBudgetBuilder,
};
pub use budget::budgeted::Budgeted;
pub use budget::layer::BudgetLayer;
pub use link::{FleetLink, FleetLinkBuilder, NatsAuth, NatsTls, StreamSettings};
pub use message::{
    Change, ChangeKind, IgnoreReason, MAX_MESSAGE_LEN, MAX_ORIGIN_LEN, MAX_VERSION_LEN,
};
pub use metrics::{ApplyAction, FleetMetrics, PublishOutcome};
pub use publish::layer::PublishLayer;
pub use publish::published::Published;
pub use publish::publisher::{
    DEFAULT_OUTBOX_CAPACITY, DEFAULT_PUBLISH_TIMEOUT, Publisher, PublisherBuilder,
};
pub use subject::{
    DEFAULT_PREFIX, LEASE_BUCKET, check_prefix, check_store_id, key_subject, stream_name,
};
pub use subscribe::apply::ApplyMode;
pub use subscribe::subscriber::{
    DEFAULT_MIN_INTERVAL, DEFAULT_REVALIDATE_JITTER, Subscriber, SubscriberBuilder,
};
pub use watch::watcher::{DEFAULT_WATCH_INTERVAL, Watched, Watcher, WatcherBuilder};
