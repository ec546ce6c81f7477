//! A fixed number of cache hits, for instruction counting: `valgrind --tool=callgrind
//! target/release/examples/hit_profile cache 100000` minus the same with `0` iterations,
//! divided by the iterations, is the cost of one hit through the `Arc<dyn KeyStore>` (`dyn`:
//! through `&dyn KeyStore`, without kms-core's `Arc` forwarding box; `bare`: a bare
//! `moka::future::Cache::get` of the same keys).

use std::hint::black_box;
use std::time::Duration;

use kms_cache::CacheLayer;
use kms_core::{KeyName, KeyStore, MemoryStore, SecretValue};

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "cache".into());
    let iters: usize = args.next().map_or(100_000, |n| n.parse().unwrap());
    let keys: Vec<KeyName> = (0..100)
        .map(|i| KeyName::new(format!("bench/key-{i:03}")).unwrap())
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = kms_core::StoreBuilder::new(MemoryStore::new())
        .layer(CacheLayer::new().ttl(Duration::from_secs(3600)))
        .build();
    let bare = moka::future::Cache::new(10_000);
    rt.block_on(async {
        for k in &keys {
            let v = SecretValue::from(vec![7u8; 64]);
            store.store(k, v.clone()).await.unwrap();
            store.get(k).await.unwrap();
            bare.insert(k.clone(), v).await;
        }
        match mode.as_str() {
            "cache" => {
                for i in 0..iters {
                    black_box(store.get(&keys[i % 100]).await.unwrap());
                }
            }
            "dyn" => {
                let store: &dyn KeyStore = &*store;
                for i in 0..iters {
                    black_box(store.get(&keys[i % 100]).await.unwrap());
                }
            }
            "bare" => {
                for i in 0..iters {
                    black_box(bare.get(&keys[i % 100]).await.unwrap());
                }
            }
            other => panic!("unknown mode {other}: cache, dyn or bare"),
        }
    });
}
