//! The store variants both benches compare, and their keys.
//!
//! - `memory/*`: `MemoryStore`, bare and instrumented (the `Measured` future path).
//! - `cache/*`: kms-cache over `MemoryStore`, bare and instrumented (a hit through
//!   `get_now`): the case the 50 ns target is about, but moka's own cost and its contention
//!   between threads are most of the time, and vary.
//! - `ready/*`: [`ReadyStore`], a store that answers every `get_now` at once with a fresh value,
//!   bare and instrumented: the same `get_now` hit path as the cache with little below it and
//!   nothing shared between threads but reads, so the decorator's own cost (and whether it
//!   stays flat on two threads) is measured with little noise.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use kms_cache::CacheLayer;
use kms_core::{
    Capabilities, Error, KeyName, KeyPrefix, KeyStore, MemoryStore, SecretMeta, SecretValue,
    StoreBuilder, StoredSecret,
};
use kms_metrics::KmsMetrics;

pub const KEYS: usize = 100;

pub fn keys() -> Vec<KeyName> {
    (0..KEYS)
        .map(|i| KeyName::new(format!("bench/key-{i:03}")).unwrap())
        .collect()
}

/// Every variant, bare and instrumented (service-side layer only, no audit).
pub fn stores(metrics: &KmsMetrics) -> Vec<(&'static str, Arc<dyn KeyStore>)> {
    let layer = || metrics.layer().audit(false);
    let cached = || StoreBuilder::new(MemoryStore::new()).layer(CacheLayer::new());
    vec![
        ("memory/bare", StoreBuilder::new(MemoryStore::new()).build()),
        (
            "memory/instrumented",
            StoreBuilder::new(MemoryStore::new()).layer(layer()).build(),
        ),
        ("cache/bare", cached().build()),
        (
            "cache/instrumented",
            StoreBuilder::new(MemoryStore::new())
                .layer(layer())
                .layer(CacheLayer::new())
                .build(),
        ),
        ("ready/bare", StoreBuilder::new(ReadyStore::new()).build()),
        (
            "ready/instrumented",
            StoreBuilder::new(ReadyStore::new()).layer(layer()).build(),
        ),
    ]
}

/// Writes every key once and reads it once (fills the cache).
pub async fn fill(store: &dyn KeyStore, keys: &[KeyName]) {
    for k in keys {
        store
            .store(k, SecretValue::from(vec![7u8; 64]))
            .await
            .unwrap();
        store.get(k).await.unwrap();
    }
}

/// Answers `get_now` (and `get`) for the bench keys at once; `store` of a bench key succeeds
/// without changing anything. Each read builds a fresh value (no version id), so that threads
/// reading at once share nothing but the read-only key set: the bare variant does not contend.
#[derive(Debug)]
pub struct ReadyStore {
    keys: HashSet<KeyName>,
    created: SystemTime,
}

impl ReadyStore {
    fn new() -> Self {
        Self {
            keys: keys().into_iter().collect(),
            created: SystemTime::now(),
        }
    }

    fn read(&self, key: &KeyName) -> kms_core::Result<StoredSecret> {
        if !self.keys.contains(key) {
            return Err(Error::not_found(key));
        }
        Ok(StoredSecret {
            value: SecretValue::from(vec![7u8; 64]),
            meta: SecretMeta::default().created_at(self.created),
        })
    }
}

impl fmt::Display for ReadyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ready")
    }
}

#[kms_core::async_trait]
impl KeyStore for ReadyStore {
    fn backend(&self) -> &'static str {
        "ready"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new()
    }

    async fn get(&self, key: &KeyName) -> kms_core::Result<StoredSecret> {
        self.read(key)
    }

    fn get_now(&self, key: &KeyName) -> Option<kms_core::Result<StoredSecret>> {
        Some(self.read(key))
    }

    async fn store(&self, key: &KeyName, _value: SecretValue) -> kms_core::Result<SecretMeta> {
        self.read(key).map(|s| s.meta)
    }

    async fn remove(&self, key: &KeyName) -> kms_core::Result<()> {
        let _ = key;
        Err(Error::unsupported("remove").with_backend(self.backend()))
    }

    async fn list(&self, _prefix: &KeyPrefix) -> kms_core::Result<Vec<KeyName>> {
        Ok(self.keys.iter().cloned().collect())
    }

    async fn health(&self) -> kms_core::Result<()> {
        Ok(())
    }
}
