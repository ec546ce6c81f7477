//! A stop flag that SIGINT sets and long commands check between keys.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once, on the first SIGINT (or by a test). Commands over many keys start no new key
/// once it is set, let the keys in flight finish (each is one write, whole or not at all), and
/// report what they did.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the flag.
    pub fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
