//! [`MemoryStore`]: the embedded default backend and the reference implementation.

use std::collections::HashMap;
use std::fmt;
use std::sync::RwLock;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::error::{Error, ErrorKind, Result};
use crate::key_name::{KeyName, KeyPrefix};
use crate::secret::{SecretMeta, SecretValue, StoredSecret};
use crate::store::{Capabilities, DEFAULT_MAX_VALUE_LEN, KeyStore, PreviousVersion};
use crate::write::context::CallContext;

/// How many versions of each key a [`MemoryStore`] keeps by default (the current one included).
pub const DEFAULT_MAX_VERSIONS: usize = 10;

/// A concurrent, versioned, in-memory [`KeyStore`].
///
/// - Every `store` writes a new version, numbered from `"1"` upwards (a repeated attempt of
///   one logical write, see [`write`](crate::write), is not a new version); the last
///   [`max_versions`](MemoryStoreBuilder::max_versions) are kept and readable with
///   [`get_version`](KeyStore::get_version).
/// - `remove` deletes the key with all its versions; a key written again afterwards starts
///   over at version `"1"`.
/// - Reads take a shared lock and clone an `Arc`: no secret bytes are copied.
/// - Values are zeroized when their last copy (here or in a caller) is dropped.
///
/// ```
/// use kms_core::{KeyStoreExt, MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), kms_core::Error> {
/// let store = MemoryStore::new();
/// store.put("db/password", "s3cret").await?;
/// assert_eq!(store.get_value("db/password").await?.expose_str()?, "s3cret");
/// # Ok(()) }
/// ```
pub struct MemoryStore {
    keys: RwLock<HashMap<KeyName, Versions>>,
    max_versions: usize,
    max_value_len: usize,
}

struct Versions {
    /// Oldest first; never empty.
    kept: Vec<Version>,
    /// Number of the newest version.
    latest: u64,
}

struct Version {
    number: u64,
    value: SecretValue,
    created_at: SystemTime,
    /// The [`CallContext`] id of the write that made this version, if it had one.
    write_id: Option<Box<str>>,
}

impl Versions {
    /// Appends `value` as the newest version, forgetting the oldest beyond `max`.
    fn push(
        &mut self,
        value: SecretValue,
        created_at: SystemTime,
        write: Option<CallContext>,
        max: usize,
    ) -> SecretMeta {
        self.latest += 1;
        let number = self.latest;
        self.kept.push(Version {
            number,
            value,
            created_at,
            write_id: write.map(|w| w.id().into()),
        });
        if self.kept.len() > max {
            let excess = self.kept.len() - max;
            self.kept.drain(..excess);
        }
        SecretMeta::with_version(number.to_string()).created_at(created_at)
    }
}

impl Version {
    fn to_stored(&self) -> StoredSecret {
        StoredSecret::with_meta(
            self.value.clone(),
            SecretMeta::with_version(self.number.to_string()).created_at(self.created_at),
        )
    }
}

impl MemoryStore {
    /// An empty store with the default limits.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder to set limits.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder::default()
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<KeyName, Versions>> {
        // A panic while holding the lock cannot leave the map half-written (every write is a
        // single insert/remove/push), so a poisoned lock is safe to keep using.
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<KeyName, Versions>> {
        self.keys.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Memory")
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("keys", &self.len())
            .field("max_versions", &self.max_versions)
            .field("max_value_len", &self.max_value_len)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new()
            .with_list(true)
            .with_versions(true)
            .with_max_value_len(self.max_value_len)
            .with_previous_version(PreviousVersion::Sequential)
    }

    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        let keys = self.read();
        let versions = keys
            .get(key)
            .ok_or_else(|| Error::not_found(key).with_backend("memory"))?;
        let newest = versions.kept.last().expect("a key always has a version");
        Ok(newest.to_stored())
    }

    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        let number: u64 = version.parse().map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "memory versions are positive integers, got '{}'",
                    version.escape_debug()
                ),
            )
            .with_backend("memory")
        })?;
        let keys = self.read();
        let versions = keys
            .get(key)
            .ok_or_else(|| Error::not_found(key).with_backend("memory"))?;
        versions
            .kept
            .iter()
            .find(|v| v.number == number)
            .map(Version::to_stored)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "version {number} of key '{key}' not found (latest is {})",
                        versions.latest
                    ),
                )
                .with_backend("memory")
            })
    }

    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        self.capabilities()
            .check_value(&value)
            .map_err(|e| e.with_backend("memory"))?;
        let created_at = SystemTime::now();
        let write = CallContext::current();
        let mut keys = self.write();
        let versions = keys.entry(key.clone()).or_insert_with(|| Versions {
            kept: Vec::with_capacity(1),
            latest: 0,
        });
        // A repeat of the write that made the newest version (same id, same bytes: an attempt
        // that timed out after it landed) is that version, not a new one.
        if let (Some(write), Some(newest)) = (&write, versions.kept.last())
            && newest.write_id.as_deref() == Some(write.id())
            && newest.value == value
        {
            return Ok(
                SecretMeta::with_version(newest.number.to_string()).created_at(newest.created_at)
            );
        }
        Ok(versions.push(value, created_at, write, self.max_versions))
    }

    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> Result<SecretMeta> {
        self.capabilities()
            .check_value(&value)
            .map_err(|e| e.with_backend("memory"))?;
        let created_at = SystemTime::now();
        let mut keys = self.write();
        let current = keys.get(key).map(|v| v.latest.to_string());
        if current.as_deref() != expected {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "check-and-set on '{key}': the current version is {}, not {}",
                    current.as_deref().unwrap_or("none (no such key)"),
                    expected.unwrap_or("none (no such key)")
                ),
            )
            .with_backend("memory"));
        }
        let versions = keys.entry(key.clone()).or_insert_with(|| Versions {
            kept: Vec::with_capacity(1),
            latest: 0,
        });
        Ok(versions.push(value, created_at, CallContext::current(), self.max_versions))
    }

    async fn remove(&self, key: &KeyName) -> Result<()> {
        match self.write().remove(key) {
            Some(_) => Ok(()),
            None => Err(Error::not_found(key).with_backend("memory")),
        }
    }

    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        Ok(self
            .read()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }

    async fn health(&self) -> Result<()> {
        Ok(())
    }
}

/// Builds a [`MemoryStore`] with custom limits.
#[derive(Clone, Debug)]
pub struct MemoryStoreBuilder {
    max_versions: usize,
    max_value_len: usize,
}

impl Default for MemoryStoreBuilder {
    fn default() -> Self {
        Self {
            max_versions: DEFAULT_MAX_VERSIONS,
            max_value_len: DEFAULT_MAX_VALUE_LEN,
        }
    }
}

impl MemoryStoreBuilder {
    /// How many versions of each key to keep, the current one included (at least 1).
    #[must_use]
    pub fn max_versions(mut self, n: usize) -> Self {
        self.max_versions = n.max(1);
        self
    }

    /// The largest value accepted, in bytes.
    #[must_use]
    pub fn max_value_len(mut self, bytes: usize) -> Self {
        self.max_value_len = bytes;
        self
    }

    /// Builds the store.
    pub fn build(self) -> MemoryStore {
        MemoryStore {
            keys: RwLock::new(HashMap::new()),
            max_versions: self.max_versions,
            max_value_len: self.max_value_len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> KeyName {
        KeyName::new(s).unwrap()
    }

    #[tokio::test]
    async fn get_now_is_only_for_stores_that_can_answer_at_once() {
        let store = MemoryStore::new();
        store.store(&key("k"), "v".into()).await.unwrap();
        // The default: "call get", even for a key that exists.
        assert!(store.get_now(&key("k")).is_none());
        let shared: std::sync::Arc<dyn KeyStore> = std::sync::Arc::new(store);
        assert!(shared.get_now(&key("k")).is_none());
    }

    #[tokio::test]
    async fn keeps_a_bounded_number_of_versions() {
        let store = MemoryStore::builder().max_versions(2).build();
        for v in ["a", "b", "c"] {
            store.store(&key("k"), v.into()).await.unwrap();
        }
        let current = store.get(&key("k")).await.unwrap();
        assert_eq!(current.meta.version.as_deref(), Some("3"));
        assert_eq!(
            store.get_version(&key("k"), "2").await.unwrap().value,
            "b".into()
        );
        let gone = store.get_version(&key("k"), "1").await.unwrap_err();
        assert_eq!(gone.kind(), ErrorKind::NotFound);
        let bad = store.get_version(&key("k"), "latest").await.unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn versions_restart_after_remove() {
        let store = MemoryStore::new();
        store.store(&key("k"), "a".into()).await.unwrap();
        store.store(&key("k"), "b".into()).await.unwrap();
        store.remove(&key("k")).await.unwrap();
        let meta = store.store(&key("k"), "c".into()).await.unwrap();
        assert_eq!(meta.version.as_deref(), Some("1"));
    }
}
