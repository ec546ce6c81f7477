//! Single-flight loads: concurrent misses of one key share one backend call.

use std::sync::atomic::{AtomicBool, Ordering};

use kms_core::{Result, StoredSecret};
use tokio::sync::OnceCell;

/// One load of one key, shared by every `get` that missed while it ran.
#[derive(Default)]
pub(crate) struct Flight {
    /// The load's result, set once; every waiter clones it (errors included).
    pub result: OnceCell<Result<StoredSecret>>,
    /// Set by a write or an invalidation through the cache while the load ran: its result is
    /// still returned to its waiters (they asked before the write), but never cached.
    superseded: AtomicBool,
}

impl Flight {
    pub(crate) fn supersede(&self) {
        self.superseded.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_superseded(&self) -> bool {
        self.superseded.load(Ordering::SeqCst)
    }
}
