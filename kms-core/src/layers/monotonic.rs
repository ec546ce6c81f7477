//! [`MonotonicLayer`] and [`Monotonic`]: per key, never an older version than one already
//! returned.
//!
//! The whole story is on [`MonotonicLayer`] (this module is private; its items are
//! re-exported at the crate root).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::floors::VersionFloors;
use super::layer::Layer;
use crate::error::{Error, ErrorKind, Result};
use crate::key_name::{KeyName, KeyPrefix};
use crate::secret::{SecretMeta, SecretValue, StoredSecret};
use crate::store::{Capabilities, KeyStore};

/// Monotonic reads: per key, a read through the stack never returns a version older than one
/// it already returned or wrote.
///
/// A store with several copies (a Vault cluster's nodes, an AWS primary Region and its
/// replicas, two Vault clusters kept in sync) can answer a read from a copy that is behind.
/// Every version returned, and every version written through the layer, raises the key's
/// floor ([`VersionFloors`]); an answer below the floor is refused and the read asked again
/// (the store below may route it to another node or target: the
/// [`FailoverLayer`](crate::FailoverLayer) skips a target that is behind itself when given
/// the same floors with [`FailoverLayer::floors`](crate::FailoverLayer::floors)), up to
/// [`attempts`](Self::attempts) times; then the read fails with [`ErrorKind::Unavailable`]
/// (retryable; a cache above serves the value it holds). Refusals are counted
/// ([`VersionFloors::behind_count`]; the metrics crate exports them).
///
/// Versions are compared as [`VersionFloors`] says: numeric ids by number, otherwise creation
/// times; answers with neither pass. `get_version` (an explicit version) is not checked;
/// `remove` forgets the key's floor. Memory is bounded by the floors' capacity (default
/// 10 000 keys, first in first out).
///
/// Sits below the cache (a reload from a copy that is behind is caught before the cache
/// keeps it) and above failover (it sees whichever target answered); see the
/// [stack order](crate::layers).
///
/// ```
/// use kms_core::{MemoryStore, MonotonicLayer, StoreBuilder};
///
/// let monotonic = MonotonicLayer::new().capacity(50_000);
/// let store = StoreBuilder::new(MemoryStore::new()).layer(monotonic).build();
/// assert_eq!(store.to_string(), "Monotonic(Memory)");
/// ```
#[derive(Clone, Debug)]
pub struct MonotonicLayer {
    floors: VersionFloors,
    attempts: u32,
}

impl Default for MonotonicLayer {
    fn default() -> Self {
        Self {
            floors: VersionFloors::default(),
            attempts: Self::DEFAULT_ATTEMPTS,
        }
    }
}

impl MonotonicLayer {
    /// How many times a read is asked by default before an answer that is behind fails it.
    pub const DEFAULT_ATTEMPTS: u32 = 3;

    /// Floors for [`VersionFloors::DEFAULT_CAPACITY`] keys, [`DEFAULT_ATTEMPTS`](Self::DEFAULT_ATTEMPTS).
    pub fn new() -> Self {
        Self::default()
    }

    /// Remembers at most `keys` keys (fresh floors; see [`VersionFloors`]).
    #[must_use]
    pub fn capacity(mut self, keys: usize) -> Self {
        self.floors = VersionFloors::new(keys);
        self
    }

    /// How many times a read is asked before an answer that is behind fails it (at least 1).
    #[must_use]
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// The floors this layer keeps (clones share them): give them to
    /// [`FailoverLayer::floors`](crate::FailoverLayer::floors) so failover skips a target
    /// that is behind, and to metrics to export the refusals.
    pub fn floors(&self) -> VersionFloors {
        self.floors.clone()
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] naming `attempts` when it is zero.
    pub fn validate(&self) -> Result<()> {
        if self.attempts == 0 {
            return Err(Error::configuration("attempts", "must be 1 or more"));
        }
        Ok(())
    }
}

impl Layer for MonotonicLayer {
    fn layer(&self, inner: Arc<dyn KeyStore>) -> Arc<dyn KeyStore> {
        Arc::new(Monotonic::new(inner, self))
    }

    fn validate(&self) -> Result<()> {
        MonotonicLayer::validate(self)
    }
}

/// The decorator [`MonotonicLayer`] makes; see there.
pub struct Monotonic<S> {
    inner: S,
    floors: VersionFloors,
    attempts: u32,
}

impl<S: KeyStore> Monotonic<S> {
    /// Wraps `inner` with `layer`'s floors and settings (an `attempts` of zero asks once).
    pub fn new(inner: S, layer: &MonotonicLayer) -> Self {
        Self {
            inner,
            floors: layer.floors.clone(),
            attempts: layer.attempts.max(1),
        }
    }

    /// The floors kept (shared with the layer).
    pub fn floors(&self) -> &VersionFloors {
        &self.floors
    }
}

impl<S: KeyStore> fmt::Display for Monotonic<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Monotonic({})", self.inner)
    }
}

impl<S: KeyStore> fmt::Debug for Monotonic<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Monotonic")
            .field("inner", &self.inner)
            .field("floors", &self.floors)
            .field("attempts", &self.attempts)
            .finish()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: KeyStore> KeyStore for Monotonic<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        for _ in 0..self.attempts {
            let secret = self.inner.get(key).await?;
            if self.floors.is_behind(key, &secret.meta) {
                continue;
            }
            self.floors.raise(key, &secret.meta);
            return Ok(secret);
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            format!(
                "key '{key}': the store answered {} times with a version older than one \
                 already returned (a node or replica is behind)",
                self.attempts
            ),
        )
        .with_backend(self.inner.backend()))
    }
    fn get_now(&self, key: &KeyName) -> Option<Result<StoredSecret>> {
        // Forwarded (a cache below answers at once) and checked like `get`: an answer that is
        // behind is not returned; `get` then asks the store.
        match self.inner.get_now(key)? {
            Ok(secret) if self.floors.is_behind(key, &secret.meta) => None,
            Ok(secret) => {
                self.floors.raise(key, &secret.meta);
                Some(Ok(secret))
            }
            Err(e) => Some(Err(e)),
        }
    }
    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        // Forwarded unchecked: the caller named the version it wants.
        self.inner.get_version(key, version).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        let meta = self.inner.store(key, value).await?;
        // Read-your-writes: no later read returns a version older than this write.
        self.floors.raise(key, &meta);
        Ok(meta)
    }
    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> Result<SecretMeta> {
        let meta = self.inner.store_if_version(key, value, expected).await?;
        self.floors.raise(key, &meta);
        Ok(meta)
    }
    async fn remove(&self, key: &KeyName) -> Result<()> {
        // Forgotten before the call and again after it: a version read while the removal
        // was in flight cannot leave a floor behind (a key created again starts anew).
        self.floors.forget(key);
        self.inner.remove(key).await?;
        self.floors.forget(key);
        Ok(())
    }
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        // Forwarded: a listing has no versions to order.
        self.inner.list(prefix).await
    }
    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::MemoryStore;

    /// Answers `get` with the versions queued, in turn.
    #[derive(Debug, Default)]
    struct Replies {
        versions: Mutex<Vec<&'static str>>,
        calls: AtomicUsize,
    }

    impl fmt::Display for Replies {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Replies")
        }
    }

    #[async_trait]
    impl KeyStore for Replies {
        fn backend(&self) -> &'static str {
            "replies"
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities::new()
        }
        async fn get(&self, _key: &KeyName) -> Result<StoredSecret> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let v = self.versions.lock().unwrap().remove(0);
            Ok(StoredSecret {
                value: v.into(),
                meta: SecretMeta::with_version(v),
            })
        }
        async fn store(&self, _key: &KeyName, _value: SecretValue) -> Result<SecretMeta> {
            Ok(SecretMeta::with_version("9"))
        }
        async fn remove(&self, _key: &KeyName) -> Result<()> {
            Ok(())
        }
        async fn list(&self, _prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
            Ok(Vec::new())
        }
        async fn health(&self) -> Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn an_answer_behind_is_asked_again_then_refused() {
        let layer = MonotonicLayer::new().attempts(2);
        let replies = Arc::new(Replies::default());
        *replies.versions.lock().unwrap() = vec!["3", "2", "4", "2", "1"];
        let store = Monotonic::new(replies.clone(), &layer);
        let key = KeyName::new("k").unwrap();
        assert_eq!(
            store.get(&key).await.unwrap().meta.version.as_deref(),
            Some("3")
        );
        // "2" is behind: asked again, "4" returned.
        assert_eq!(
            store.get(&key).await.unwrap().meta.version.as_deref(),
            Some("4")
        );
        // "2" then "1": both behind, refused as unavailable.
        let err = store.get(&key).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.to_string().contains("older"), "{err}");
        assert_eq!(layer.floors().behind_count(), 3);
        assert_eq!(replies.calls.load(Ordering::Relaxed), 5);
        // A write raises the floor (read-your-writes), a removal forgets it.
        store.store(&key, "x".into()).await.unwrap();
        *replies.versions.lock().unwrap() = vec!["5", "6"];
        assert!(store.get(&key).await.is_err());
        store.remove(&key).await.unwrap();
        *replies.versions.lock().unwrap() = vec!["1"];
        assert_eq!(
            store.get(&key).await.unwrap().meta.version.as_deref(),
            Some("1")
        );
    }

    #[test]
    fn zero_attempts_is_a_configuration_error() {
        let store = Monotonic::new(MemoryStore::new(), &MonotonicLayer::new());
        assert_eq!(store.to_string(), "Monotonic(Memory)");
        let err = MonotonicLayer::new().attempts(0).validate().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration);
        assert!(err.to_string().contains("attempts"), "{err}");
    }
}
