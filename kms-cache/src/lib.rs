#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod observer;

pub use observer::{CacheObserver, CacheStats, EvictionCause};
