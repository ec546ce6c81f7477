//! [`CacheHandle`]: explicit control of a cache after it was moved into a stack.

use std::fmt;
use std::sync::{Arc, OnceLock};

use kms_core::{Error, ErrorKind, KeyName, Result, StoredSecret};

use crate::engine::Core;
use crate::observer::CacheStats;
use crate::rejection::Rejection;

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

    /// Reports that the credential of `version` of `key` (the
    /// [`SecretMeta::version`](kms_core::SecretMeta::version) of a value this cache served)
    /// was refused downstream: a database rejected the password, a peer the token. Call it
    /// when the refusal says the credential is wrong, not for a transient failure.
    ///
    /// - If the cache holds that version, it is dropped (its stale fallback too) and one
    ///   forced refresh of the key starts: it reads the key (one backend read, shared with
    ///   any reader that misses meanwhile) and, while the backend still answers the refused
    ///   version, reads again with jittered back-off (1 s doubling up to 10 s, each wait up
    ///   to half shorter) until the retry budget is over
    ///   ([`CacheLayer::rejection_retry_budget`](crate::CacheLayer::rejection_retry_budget),
    ///   default 90 s: AWS single-user rotation changes the password before it moves
    ///   `AWSCURRENT`). Meanwhile the refused version is never cached and never a hit:
    ///   readers of the key miss, join the refresh's read while one is in flight, and
    ///   otherwise get the refused version as the refresh's latest read answered it (it is
    ///   what the backend still says is current; at most one back-off step old), without a
    ///   backend read of their own and without waiting for the budget. So the backend sees
    ///   only the refresh's reads: about 15 over the default budget, 21 at most. The
    ///   returned future resolves when the refresh ends: [`Rejection::Refreshed`] once
    ///   another version is cached, [`Rejection::StillRejected`] if the budget ran out.
    /// - Reports of the version being refreshed join that refresh (and get its outcome).
    /// - At most one forced refresh per key starts within
    ///   [`rejection_rate_limit`](crate::CacheLayer::rejection_rate_limit) (default 30 s)
    ///   after the previous one ended: a report of the cached version within it is
    ///   [`Rejection::RateLimited`] and changes nothing.
    /// - A report of a version the cache does not hold (never served, or already replaced)
    ///   is [`Rejection::IgnoredUnknown`] and costs no backend read.
    ///
    /// Every report is counted ([`CacheStats::rejection_reports`],
    /// [`CacheObserver::rejection`](crate::CacheObserver::rejection)); every forced refresh
    /// ends with an audit event (tracing target `kms::audit`, `operation =
    /// "credential_rejected"`, with key, version id, backend and outcome). The decision is
    /// taken on the first poll; the refresh then runs detached on the Tokio runtime the cache
    /// was built in, so dropping the future after that changes nothing for it (a cache built
    /// outside a runtime runs it in the reporter, one read, no back-off). Stores without
    /// version ids cannot be reported on: use [`refresh`](Self::refresh).
    ///
    /// Before the layer has built a store, the answer is
    /// `Rejection::Failed(ErrorKind::Configuration)`.
    pub async fn report_rejected(&self, key: &KeyName, version: &str) -> Rejection {
        match self.core.get() {
            Some(core) => core.report_rejected(key, version).await,
            None => Rejection::Failed(ErrorKind::Configuration),
        }
    }

    /// The version the cache holds `key` at: `None` if it holds nothing for the key,
    /// `Some(None)` if it holds a value of unknown version (or remembers that the key does not
    /// exist). Not a read: no hit is counted and the entry's place in the eviction order and
    /// its time-to-idle do not move.
    pub fn cached_version(&self, key: &KeyName) -> Option<Option<Arc<str>>> {
        self.core.get()?.peek_version(key)
    }

    /// Every key the cache holds now, fresh or stale (a snapshot; a key may be gone by the
    /// time it is used).
    pub fn cached_keys(&self) -> Vec<KeyName> {
        self.core
            .get()
            .map_or_else(Vec::new, |core| core.held_keys())
    }

    /// Drops `key` (as [`invalidate`](Self::invalidate)) unless the cache holds it at
    /// `version`; returns whether it was dropped. For a message that says "`key` is now at
    /// `version`": a cache already at that version keeps its entry and costs no reload.
    pub fn invalidate_unless_version(&self, key: &KeyName, version: &str) -> bool {
        let Some(core) = self.core.get() else {
            return false;
        };
        if let Some(Some(held)) = core.peek_version(key)
            && &*held == version
        {
            return false;
        }
        core.invalidate(key);
        true
    }

    /// Asks the store below the cache for `key` (one read, which does not go through the
    /// cache) and drops the cached entry if the store's version differs from the one held,
    /// or the store no longer has the key or denies it; returns whether it was dropped.
    /// On any other failure the entry is kept, so a cache that cannot reach its store keeps
    /// serving. For revalidating every key after invalidation messages may have been missed.
    ///
    /// # Errors
    ///
    /// The store's error (nothing is dropped then, unless the error withdraws the value);
    /// [`ErrorKind::Configuration`] if the layer has built no store yet.
    pub async fn revalidate(&self, key: &KeyName) -> Result<bool> {
        let Some(core) = self.core.get() else {
            return Err(Error::new(
                ErrorKind::Configuration,
                "cache layer has not built a store yet",
            ));
        };
        let Some(held) = core.peek_version(key) else {
            return Ok(false);
        };
        match core.inner().get(key).await {
            Ok(current) if current.meta.version == held && held.is_some() => Ok(false),
            Ok(_) => {
                core.invalidate(key);
                Ok(true)
            }
            Err(err) if err.kind().withdraws_stale() => {
                core.invalidate(key);
                Ok(true)
            }
            Err(err) => Err(err),
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
