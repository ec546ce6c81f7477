#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod cached;
mod config;
mod entry;
mod flight;
mod handle;
mod observer;
mod policy;
mod recorder;

pub use cached::Cached;
pub use config::{
    CacheLayer, Capacity, DEFAULT_JITTER, DEFAULT_LOAD_TIMEOUT, DEFAULT_MAX_ENTRIES,
    DEFAULT_STALE_WAIT, DEFAULT_TTL,
};
pub use handle::CacheHandle;
pub use observer::{CacheObserver, CacheStats, EvictionCause};
/// The clock crate [`CacheLayer::clock`] takes, re-exported so versions always match.
pub use quanta;
