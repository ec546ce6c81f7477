//! Instrumented vs bare `get`, over `MemoryStore` and over the cache, single task.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use kms_cache::CacheLayer;
use kms_core::{KeyName, KeyStore, MemoryStore, SecretValue, StoreBuilder};
use kms_metrics::KmsMetrics;
use kms_metrics::prometheus_client::registry::Registry;

const KEYS: usize = 100;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn stores() -> Vec<(&'static str, Arc<dyn KeyStore>)> {
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let layer = || metrics.layer().health_probe(None).audit(false);
    vec![
        ("memory/bare", StoreBuilder::new(MemoryStore::new()).build()),
        (
            "memory/instrumented",
            StoreBuilder::new(MemoryStore::new()).layer(layer()).build(),
        ),
        (
            "cache/bare",
            StoreBuilder::new(MemoryStore::new())
                .layer(CacheLayer::new())
                .build(),
        ),
        (
            "cache/instrumented",
            StoreBuilder::new(MemoryStore::new())
                .layer(layer())
                .layer(CacheLayer::new())
                .build(),
        ),
    ]
}

fn get(c: &mut Criterion) {
    let rt = rt();
    let keys: Vec<KeyName> = (0..KEYS)
        .map(|i| KeyName::new(format!("bench/key-{i:03}")).unwrap())
        .collect();
    let mut g = c.benchmark_group("get");
    for (name, store) in stores() {
        rt.block_on(async {
            for k in &keys {
                store
                    .store(k, SecretValue::from(vec![7u8; 64]))
                    .await
                    .unwrap();
                store.get(k).await.unwrap();
            }
        });
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                i = (i + 1) % KEYS;
                let (store, key) = (&store, &keys[i]);
                async move { black_box(store.get(key).await.unwrap()) }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, get);
criterion_main!(benches);
