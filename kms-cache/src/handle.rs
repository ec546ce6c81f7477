//! [`CacheHandle`]: explicit control of a cache after it was moved into a stack.

use std::fmt;
use std::sync::{Arc, OnceLock};

use kms_core::{Error, ErrorKind, KeyName, Result, StoredSecret};

use crate::engine::Core;
use crate::observer::CacheStats;

/// Controls a cache: invalidate one key or all, force a refresh, read its stats. Cheap to
/// clone; get one from [`CacheLayer::handle`](crate::CacheLayer::handle) or
/// [`Cached::handle`](crate::Cached::handle).
#[derive(Clone)]
pub struct CacheHandle {
    core: Arc<OnceLock<Arc<Core>>>,
}

impl CacheHandle {
    pub(crate) fn new(core: Arc<OnceLock<Arc<Core>>>) -> Self {
        Self { core }
    }

    pub(crate) fn from_core(core: Arc<Core>) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(core);
        Self {
            core: Arc::new(cell),
        }
    }

    /// Drops `key` from the cache; a load of it in flight will not be cached.
    pub fn invalidate(&self, key: &KeyName) {
        if let Some(core) = self.core.get() {
            core.invalidate(key);
        }
    }

    /// Drops every entry.
    pub fn invalidate_all(&self) {
        if let Some(core) = self.core.get() {
            core.invalidate_all();
        }
    }

    /// Reloads `key` from the backend now and caches the result (unless a write of `key` failed
    /// or was dropped less than `load_timeout` ago: it may still land, see the crate docs).
    ///
    /// # Errors
    ///
    /// The backend's error; [`ErrorKind::Configuration`] if the layer has built no store yet.
    pub async fn refresh(&self, key: &KeyName) -> Result<StoredSecret> {
        match self.core.get() {
            Some(core) => core.refresh(key).await,
            None => Err(Error::new(
                ErrorKind::Configuration,
                "cache layer has not built a store yet",
            )),
        }
    }

    /// Loads in flight now: the cache's in-flight bookkeeping, back to zero once every load
    /// has ended (a load keeps running after its callers leave, at most its load timeout).
    pub fn loads_in_flight(&self) -> usize {
        self.core.get().map_or(0, |core| core.loads_in_flight())
    }

    /// The counters, entry count and weighted size now.
    pub fn stats(&self) -> CacheStats {
        self.core.get().map(|core| core.stats()).unwrap_or_default()
    }
}

impl fmt::Debug for CacheHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheHandle")
            .field("stats", &self.stats())
            .finish()
    }
}
