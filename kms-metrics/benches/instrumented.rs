//! Instrumented vs bare `get`, over `MemoryStore` and over the cache: one task (`get/...`), and
//! two OS threads, each with its own current-thread runtime, reading the same store at once
//! (`get_2threads/...`: time per `get` in each thread; flat against `get/...` means the
//! shared series do not contend).

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

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

fn get_two_threads(c: &mut Criterion) {
    let keys: Vec<KeyName> = (0..KEYS)
        .map(|i| KeyName::new(format!("bench/key-{i:03}")).unwrap())
        .collect();
    let mut g = c.benchmark_group("get_2threads");
    for (name, store) in stores() {
        rt().block_on(async {
            for k in &keys {
                store
                    .store(k, SecretValue::from(vec![7u8; 64]))
                    .await
                    .unwrap();
                store.get(k).await.unwrap();
            }
        });
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let barrier = Barrier::new(2);
                std::thread::scope(|s| {
                    let threads: Vec<_> = (0..2)
                        .map(|t| {
                            let (store, keys, barrier) = (&store, &keys, &barrier);
                            s.spawn(move || {
                                let rt = rt();
                                barrier.wait();
                                let start = Instant::now();
                                rt.block_on(async {
                                    for i in 0..iters as usize {
                                        let key = &keys[(i + t * KEYS / 2) % KEYS];
                                        black_box(store.get(key).await.unwrap());
                                    }
                                });
                                start.elapsed()
                            })
                        })
                        .collect();
                    threads
                        .into_iter()
                        .map(|t| t.join().unwrap())
                        .max()
                        .unwrap_or(Duration::ZERO)
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, get, get_two_threads);
criterion_main!(benches);
