//! [`Cached`]: the caching decorator, a [`KeyStore`] that hands every call to the engine.

use std::fmt;
use std::sync::Arc;

use kms_core::{
    Capabilities, KeyName, KeyPrefix, KeyStore, Result, SecretMeta, SecretValue, StoredSecret,
    async_trait,
};

use crate::engine::{Core, Fallback};
use crate::handle::CacheHandle;

/// The caching decorator [`CacheLayer`](crate::CacheLayer) builds; see the [crate docs](crate).
///
/// `Display` is `Cache(<inner>)`; `backend()` and `capabilities()` are the inner store's.
pub struct Cached {
    core: Arc<Core>,
}

impl Cached {
    pub(crate) fn from_core(core: Arc<Core>) -> Self {
        Self { core }
    }

    /// A handle to this cache (invalidate, refresh, stats).
    pub fn handle(&self) -> CacheHandle {
        CacheHandle::from_core(self.core.clone())
    }
}

impl fmt::Display for Cached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cache({})", self.core.inner())
    }
}

impl fmt::Debug for Cached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cached")
            .field("inner", &format_args!("{}", self.core.inner()))
            .field("entries", &self.core.approximate_len())
            .field("ttl", &self.core.ttl())
            .finish_non_exhaustive()
    }
}

/// Every method is answered on purpose (no trait default applies): reads of the current
/// version go through the cache, versioned reads, listings and health checks pass through,
/// writes pass through and invalidate.
#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl KeyStore for Cached {
    fn backend(&self) -> &'static str {
        self.core.inner().backend()
    }

    fn capabilities(&self) -> Capabilities {
        self.core.inner().capabilities()
    }

    /// The hit path without a future: a fresh entry is answered at once (counted as a hit);
    /// anything else is `None`, and the backend is not called.
    fn get_now(&self, key: &KeyName) -> Option<Result<StoredSecret>> {
        self.core.get_now(key)
    }

    /// A fresh entry is a hit; anything else joins or starts one load (see the crate docs).
    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        self.core.get(key).await
    }

    /// Passed through, never cached: versioned reads are rare (rotation grace, audits) and go
    /// to the backend. The cache's own settings are still checked first.
    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        self.core.check()?;
        self.core.inner().get_version(key, version).await
    }

    /// Writes through, then invalidates `key` when the write succeeded. A failure that proves
    /// nothing was applied ([`Error::proves_not_applied`](kms_core::Error::proves_not_applied):
    /// a sealed Vault, a connection refused before the request was sent, rate limited, denied,
    /// refused before reaching the backend …) leaves the cache as it was, stale fallback
    /// included. Any other failure, or a write dropped by its caller, may still land: `key`
    /// is no longer fresh, and its old value is withheld from stale serving for the load
    /// timeout, then a stale fallback again (see the crate docs).
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        self.core
            .write_through(key, Fallback::Withhold, |inner| inner.store(key, value))
            .await
    }

    /// Forwarded (the check and the write are the backend's one atomic step; the cache adds
    /// no check of its own), then settles `key` exactly as [`store`](KeyStore::store) does. A
    /// `Conflict` proves nothing was applied: the cache stays as it was.
    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> Result<SecretMeta> {
        self.core
            .write_through(key, Fallback::Withhold, |inner| {
                inner.store_if_version(key, value, expected)
            })
            .await
    }

    /// Removes through, then settles `key` as [`store`](KeyStore::store) does, except that a
    /// removal whose outcome is unknown drops the old value at once: it was meant never to be
    /// served again.
    async fn remove(&self, key: &KeyName) -> Result<()> {
        self.core
            .write_through(key, Fallback::Drop, |inner| inner.remove(key))
            .await
    }

    /// Passed through, never cached: a listing must reflect keys written by other processes,
    /// and caching it would need every write anywhere under a prefix to invalidate it.
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        self.core.check()?;
        self.core.inner().list(prefix).await
    }

    /// Passed through: the backend's health, not the cache's.
    async fn health(&self) -> Result<()> {
        self.core.check()?;
        self.core.inner().health().await
    }
}
