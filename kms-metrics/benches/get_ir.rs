//! A fixed number of `get`s on one store variant, for instruction counts under callgrind
//! (`valgrind --tool=callgrind <bench binary> <variant> <n>`; subtract a run with `n = 0` and
//! divide by `n`). Variants: `memory/bare`, `memory/instrumented`, `cache/bare`,
//! `cache/instrumented`. Not a criterion bench: wall-clock numbers come from `instrumented`.

use std::hint::black_box;
use std::sync::Arc;

use kms_cache::CacheLayer;
use kms_core::{KeyName, KeyStore, MemoryStore, SecretValue, StoreBuilder};
use kms_metrics::KmsMetrics;
use kms_metrics::prometheus_client::registry::Registry;

const KEYS: usize = 100;

fn store(variant: &str, metrics: &KmsMetrics) -> Arc<dyn KeyStore> {
    let layer = || metrics.layer().health_probe(None).audit(false);
    match variant {
        "memory/bare" => StoreBuilder::new(MemoryStore::new()).build(),
        "memory/instrumented" => StoreBuilder::new(MemoryStore::new()).layer(layer()).build(),
        "cache/bare" => StoreBuilder::new(MemoryStore::new())
            .layer(CacheLayer::new())
            .build(),
        "cache/instrumented" => StoreBuilder::new(MemoryStore::new())
            .layer(layer())
            .layer(CacheLayer::new())
            .build(),
        other => panic!("unknown variant {other}"),
    }
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let variant = args.next().unwrap_or_else(|| "cache/instrumented".into());
    let n: usize = args.next().map_or(100_000, |s| s.parse().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let metrics = KmsMetrics::register(&mut Registry::default());
    let store = store(&variant, &metrics);
    let keys: Vec<KeyName> = (0..KEYS)
        .map(|i| KeyName::new(format!("bench/key-{i:03}")).unwrap())
        .collect();
    rt.block_on(async {
        for k in &keys {
            store
                .store(k, SecretValue::from(vec![7u8; 64]))
                .await
                .unwrap();
            store.get(k).await.unwrap();
        }
        for i in 0..n {
            black_box(store.get(&keys[i % KEYS]).await.unwrap());
        }
    });
}
