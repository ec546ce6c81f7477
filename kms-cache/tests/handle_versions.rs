//! The handle's version-aware controls (what fleet invalidation uses): the version a key is
//! cached at, the keys held, "drop unless at this version", and revalidation against the store.

use std::sync::Arc;

use kms_cache::CacheLayer;
use kms_core::{KeyName, KeyStore, MemoryStore};

#[tokio::test]
async fn versions_keys_and_revalidation() {
    let backend = Arc::new(MemoryStore::new());
    let key = KeyName::new("a").unwrap();
    let other = KeyName::new("b").unwrap();
    backend.store(&key, "v1".into()).await.unwrap();
    let cached = CacheLayer::new().wrap(backend.clone());
    let handle = cached.handle();
    assert_eq!(handle.cached_version(&key), None);
    cached.get(&key).await.unwrap();
    assert_eq!(handle.cached_version(&key), Some(Some("1".into())));
    assert_eq!(handle.cached_keys(), vec![key.clone()]);
    let hits = handle.stats().hits;
    handle.cached_version(&key);
    assert_eq!(handle.stats().hits, hits, "peeking is not a read");

    assert!(!handle.invalidate_unless_version(&key, "1"));
    assert!(handle.cached_version(&key).is_some());
    assert!(handle.invalidate_unless_version(&key, "2"));
    assert_eq!(handle.cached_version(&key), None);

    cached.get(&key).await.unwrap();
    assert!(!handle.revalidate(&key).await.unwrap(), "unchanged: kept");
    backend.store(&key, "v2".into()).await.unwrap();
    assert!(handle.revalidate(&key).await.unwrap(), "changed: dropped");
    assert_eq!(handle.cached_version(&key), None);
    assert_eq!(
        cached.get(&key).await.unwrap().meta.version.as_deref(),
        Some("2")
    );

    // A key not held costs no call; a key gone from the store is dropped.
    assert!(!handle.revalidate(&other).await.unwrap());
    backend.remove(&key).await.unwrap();
    assert!(handle.revalidate(&key).await.unwrap());
}
