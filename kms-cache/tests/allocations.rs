//! What a hit allocates, counted by dhat's global allocator (its own test binary, so nothing
//! else shares the allocator): exactly the one boxed future of the `async_trait` call for
//! `get`, and nothing at all for `get_now`.

use std::time::Duration;

use kms_cache::CacheLayer;
use kms_core::{KeyName, KeyStore, MemoryStore, SecretValue, StoreBuilder};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const HITS: u64 = 1_000;

fn blocks() -> u64 {
    dhat::HeapStats::get().total_blocks
}

#[test]
fn a_hit_allocates_only_the_boxed_future() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let keys: Vec<KeyName> = (0..10)
        .map(|i| KeyName::new(format!("alloc/key-{i}")).unwrap())
        .collect();
    let store = StoreBuilder::new(MemoryStore::new())
        .layer(CacheLayer::new().ttl(Duration::from_secs(3600)))
        .build();
    rt.block_on(async {
        for k in &keys {
            store
                .store(k, SecretValue::from(vec![7u8; 64]))
                .await
                .unwrap();
            store.get(k).await.unwrap(); // the miss that caches it
        }
        let before = blocks();
        for i in 0..HITS {
            let hit = store.get(&keys[i as usize % keys.len()]).await.unwrap();
            assert_eq!(hit.value.len(), 64);
        }
        assert_eq!(
            blocks() - before,
            HITS,
            "one allocation per get: the boxed future"
        );

        let before = blocks();
        for i in 0..HITS {
            let hit = store
                .get_now(&keys[i as usize % keys.len()])
                .unwrap()
                .unwrap();
            assert_eq!(hit.value.len(), 64);
        }
        assert_eq!(blocks() - before, 0, "get_now allocates nothing");
    });
}
