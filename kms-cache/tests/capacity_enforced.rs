//! A cache over its entry budget never serves more entries than the budget: every entry a hit
//! can read is one moka counts, even right after a burst of first-time misses (moka applies
//! its writes lazily, so without help the read index would keep serving entries moka has not
//! yet had the chance to evict).

use kms_cache::{CacheLayer, Capacity};
use kms_core::fault::FaultStore;
use kms_core::{KeyStore, KeyStoreExt, MemoryStore, Operation, StoreBuilder};

#[tokio::test]
async fn reading_fifty_keys_twice_with_room_for_five_serves_at_most_five_hits() {
    let backend = MemoryStore::new();
    for i in 0..50 {
        backend.put(&format!("k{i:02}"), "v").await.unwrap();
    }
    let backend = FaultStore::new(backend);
    let faults = backend.handle();
    let layer = CacheLayer::new().capacity(Capacity::Entries(5));
    let handle = layer.handle();
    let store = StoreBuilder::new(backend).layer(layer).build();
    for _ in 0..2 {
        for i in 0..50 {
            store.get_value(&format!("k{i:02}")).await.unwrap();
        }
    }
    let stats = handle.stats();
    assert!(stats.entries <= 5, "{stats:?}");
    assert!(
        stats.hits <= 5,
        "hits beyond the budget were served from entries moka no longer counts: {stats:?}"
    );
    assert_eq!(stats.hits + faults.calls(Operation::Get), 100, "{stats:?}");
    // The index holds no more than moka counts: every remaining entry is still answered.
    let held = (0..50)
        .filter(|i| {
            store
                .get_now(&kms_core::KeyName::new(format!("k{i:02}")).unwrap())
                .is_some()
        })
        .count() as u64;
    assert!(held <= 5, "{held} entries readable with room for 5");
}
