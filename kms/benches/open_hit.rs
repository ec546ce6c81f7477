//! A cache hit through the stack `kms::open` builds, next to the same hit through the stack
//! assembled by hand with the builders, to show what the configuration costs per read.
//!
//! - `open`: `kms::open("memory://?cache.ttl=5m&validate.max_value_len=4096")`, i.e.
//!   `Validate(Cache(Memory))`;
//! - `open_with_metrics`: the same URI with `metrics.*`, i.e.
//!   `Instrumented(Validate(Cache(Monitored(Memory))))`;
//! - `builders`: `StoreBuilder` over a `MemoryStore` with a `kms_cache::CacheLayer` (TTL 5 min)
//!   and no validation, i.e. `Cache(Memory)`.
//!
//! Each is read two ways, one key of 100 (64-byte values, all cached beforehand) per
//! iteration: `get`, and `get_now` falling back to `get` when the stack cannot answer at once
//! (what a caller on the hot path does). The validation layer only checks writes, so once every
//! layer forwards `get_now`, `open` should be within a few percent of `builders`.
//!
//! `cargo bench -p kms --bench open_hit -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use kms::cache::CacheLayer;
use kms::{KeyName, KeyStore, MemoryStore, SecretValue, StoreBuilder};

const KEYS: usize = 100;

const OPEN: &str = "memory://?cache.ttl=5m&validate.max_value_len=4096";

const OPEN_WITH_METRICS: &str = "memory://?cache.ttl=5m&validate.max_value_len=4096\
     &metrics.prefix=bench_open_hit&metrics.health_probe=off";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn keys() -> Vec<KeyName> {
    (0..KEYS)
        .map(|i| KeyName::new(format!("bench/key-{i:03}")).unwrap())
        .collect()
}

/// Writes every key to `store` and reads it once, so that every later read is a hit.
fn warmed(
    rt: &tokio::runtime::Runtime,
    store: Arc<dyn KeyStore>,
    keys: &[KeyName],
) -> Arc<dyn KeyStore> {
    rt.block_on(async {
        for k in keys {
            store
                .store(k, SecretValue::from(vec![7u8; 64]))
                .await
                .unwrap();
            store.get(k).await.unwrap();
        }
    });
    store
}

/// Benchmarks `get`, and `get_now` falling back to `get`, of one key per iteration.
fn reads(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &tokio::runtime::Runtime,
    name: &str,
    store: &Arc<dyn KeyStore>,
    keys: &[KeyName],
) {
    let mut i = 0usize;
    g.bench_function(format!("{name}/get"), |b| {
        b.to_async(rt).iter(|| {
            i = (i + 1) % keys.len();
            let read = store.get(&keys[i]);
            async move { black_box(read.await.unwrap()) }
        })
    });
    let mut i = 0usize;
    g.bench_function(format!("{name}/get_now_or_get"), |b| {
        b.to_async(rt).iter(|| {
            i = (i + 1) % keys.len();
            let key = &keys[i];
            async move {
                let found = match store.get_now(key) {
                    Some(now) => now,
                    None => store.get(key).await,
                };
                black_box(found.unwrap())
            }
        })
    });
}

fn open_hit(c: &mut Criterion) {
    let rt = rt();
    let keys = keys();
    let open = warmed(&rt, rt.block_on(kms::open(OPEN)).unwrap(), &keys);
    assert_eq!(open.to_string(), "Validate(Cache(Memory))");
    let open_with_metrics = warmed(
        &rt,
        rt.block_on(kms::open(OPEN_WITH_METRICS)).unwrap(),
        &keys,
    );
    assert_eq!(
        open_with_metrics.to_string(),
        "Instrumented(Validate(Cache(Monitored(Memory))))"
    );
    let builders = warmed(
        &rt,
        StoreBuilder::new(MemoryStore::new())
            .layer(CacheLayer::new().ttl(Duration::from_secs(300)))
            .build(),
        &keys,
    );
    assert_eq!(builders.to_string(), "Cache(Memory)");

    let mut g = c.benchmark_group("open_hit");
    reads(&mut g, &rt, "open", &open, &keys);
    reads(&mut g, &rt, "open_with_metrics", &open_with_metrics, &keys);
    reads(&mut g, &rt, "builders", &builders, &keys);
    g.finish();
}

criterion_group!(benches, open_hit);
criterion_main!(benches);
