//! The hit path of the cache layer, side by side with a bare `moka::future::Cache::get` of the
//! same 100 keys of 64 bytes, single task and with 2 threads contending; and the miss path
//! against the bare backend.
//!
//! `kms_cache_get` calls `get` on the `Arc<dyn KeyStore>` a `StoreBuilder` returns, which goes
//! through kms-core's `KeyStore for Arc<T>` forwarding impl (which hands back the cache's own
//! boxed future, boxing nothing more). `kms_cache_get_dyn` calls the same store through
//! `&dyn KeyStore`: the two measure the same, and show that the forwarding costs nothing.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use kms_cache::CacheLayer;
use kms_core::{KeyName, KeyStore, MemoryStore, SecretValue};

const KEYS: usize = 100;

fn keys() -> Vec<KeyName> {
    (0..KEYS)
        .map(|i| KeyName::new(format!("bench/key-{i:03}")).unwrap())
        .collect()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Benchmarks `read` of the bench keys in turn, one key per iteration, on `rt` (the answer is
/// unwrapped: every read must succeed).
/// A read's answer, which in these benches is always there.
trait Found {
    type Value;
    fn found(self) -> Self::Value;
}

impl<T, E: std::fmt::Debug> Found for Result<T, E> {
    type Value = T;
    fn found(self) -> T {
        self.unwrap()
    }
}

impl<T> Found for Option<T> {
    type Value = T;
    fn found(self) -> T {
        self.unwrap()
    }
}

fn each_key<'k, F, Fut>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    rt: &tokio::runtime::Runtime,
    keys: &'k [KeyName],
    read: F,
) where
    F: Fn(&'k KeyName) -> Fut,
    Fut: Future<Output: Found>,
{
    let mut i = 0usize;
    g.bench_function(name, |b| {
        b.to_async(rt).iter(|| {
            i = (i + 1) % keys.len();
            let read = read(&keys[i]);
            async move { black_box(read.await.found()) }
        })
    });
}

fn setup() -> (
    Arc<dyn KeyStore>,
    moka::future::Cache<KeyName, SecretValue>,
    Vec<KeyName>,
) {
    let keys = keys();
    let rt = rt();
    let backend = MemoryStore::new();
    let bare = moka::future::Cache::new(10_000);
    let store = kms_core::StoreBuilder::new(backend)
        .layer(CacheLayer::new().ttl(Duration::from_secs(3600)))
        .build();
    rt.block_on(async {
        for k in &keys {
            let v = SecretValue::from(vec![7u8; 64]);
            store.store(k, v.clone()).await.unwrap();
            store.get(k).await.unwrap();
            bare.insert(k.clone(), v).await;
        }
    });
    (store, bare, keys)
}

fn single_task(c: &mut Criterion) {
    let (store, bare, keys) = setup();
    let rt = rt();
    let mut g = c.benchmark_group("hit/single_task");
    let (store, bare) = (&store, &bare);
    each_key(&mut g, "kms_cache_get", &rt, &keys, |k| store.get(k));
    let store: &dyn KeyStore = &**store;
    each_key(&mut g, "kms_cache_get_dyn", &rt, &keys, |k| store.get(k));
    each_key(&mut g, "bare_moka_future_get", &rt, &keys, |k| bare.get(k));
    g.finish();
}

/// Two threads, each on its own current-thread runtime, reading the same keys.
fn contended(c: &mut Criterion) {
    let (store, bare, keys) = setup();
    let mut g = c.benchmark_group("hit/2_threads");
    let (store, bare) = (&store, &bare);
    each_key_on_two_threads(&mut g, "kms_cache_get", &keys, |k| store.get(k));
    let store: &dyn KeyStore = &**store;
    each_key_on_two_threads(&mut g, "kms_cache_get_dyn", &keys, |k| store.get(k));
    each_key_on_two_threads(&mut g, "bare_moka_future_get", &keys, |k| bare.get(k));
    g.finish();
}

/// As [`each_key`], on two threads at once (each on its own current-thread runtime, both
/// reading the keys in the same order); the time is the slower thread's per `read`, i.e. what
/// one read takes under contention.
fn each_key_on_two_threads<'k, F, Fut>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    keys: &'k [KeyName],
    read: F,
) where
    F: Fn(&'k KeyName) -> Fut + Sync,
    Fut: Future<Output: Found>,
{
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let barrier = std::sync::Barrier::new(2);
            std::thread::scope(|s| {
                let threads: Vec<_> = (0..2)
                    .map(|_| {
                        s.spawn(|| {
                            let rt = rt();
                            barrier.wait();
                            let start = Instant::now();
                            rt.block_on(async {
                                for i in 0..iters as usize {
                                    black_box(read(&keys[i % keys.len()]).await.found());
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
                    .unwrap()
            })
        })
    });
}

/// The miss path: a cache whose entries expire at once (TTL 0), so every `get` is a miss that
/// loads from the backend and caches the result, next to the same `get` on the bare backend.
fn miss(c: &mut Criterion) {
    let keys = keys();
    let rt = rt();
    let backend = Arc::new(MemoryStore::new());
    let store = kms_core::StoreBuilder::from_arc(backend.clone())
        .layer(CacheLayer::new().ttl(Duration::from_nanos(1)).jitter(0.0))
        .build();
    rt.block_on(async {
        for k in &keys {
            store
                .store(k, SecretValue::from(vec![7u8; 64]))
                .await
                .unwrap();
        }
    });
    let mut g = c.benchmark_group("miss");
    let (store, backend) = (&store, &backend);
    each_key(&mut g, "kms_cache_get", &rt, &keys, |k| store.get(k));
    each_key(&mut g, "backend_get", &rt, &keys, |k| backend.get(k));
    g.finish();
}

criterion_group!(benches, single_task, contended, miss);
criterion_main!(benches);
