#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

// Imports run one way: `layer` (the builder users call) → `cached` (the decorator) and
// `handle` → `engine` (the cache itself) → `settings`, `observer` and `rejection` (leaves).
mod cached;
mod engine;
mod handle;
mod layer;
mod observer;
mod rejection;
mod settings;

pub use cached::Cached;
pub use handle::CacheHandle;
pub use layer::CacheLayer;
pub use observer::{CacheObserver, CacheStats, EvictionCause};
/// The clock crate [`CacheLayer::clock`] takes, re-exported so versions always match.
pub use quanta;
pub use rejection::Rejection;
pub use settings::{
    Capacity, DEFAULT_JITTER, DEFAULT_LOAD_TIMEOUT, DEFAULT_MAX_ENTRIES,
    DEFAULT_REJECTION_RATE_LIMIT, DEFAULT_REJECTION_RETRY_BUDGET, DEFAULT_STALE_WAIT, DEFAULT_TTL,
    MAX_REJECTION_RETRY_BUDGET,
};
