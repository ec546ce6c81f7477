//! Invalidation lag and publish overhead, against the NATS server of scripts/peers/nats.sh
//! (`KMS_TEST_NATS_URL`, default `nats://127.0.0.1:4222`) and, for the overhead on a real
//! write, OpenBao (`KMS_TEST_VAULT_ADDR` / `KMS_TEST_VAULT_TOKEN`, skipped when unset).
//!
//! `cargo bench -p kms-fleet`. Besides criterion's report, prints the p50 / p99 of the lag
//! from a write's start to the key being invalidated in all 100 caches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use kms_cache::{CacheHandle, CacheLayer};
use kms_core::{KeyName, KeyStore, Layer, MemoryStore};
use kms_fleet::{FleetLink, FleetMetrics, PublishLayer, Publisher, Subscriber};

const CACHES: usize = 100;

fn url() -> String {
    std::env::var("KMS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

async fn link() -> FleetLink {
    FleetLink::builder(url())
        .metrics(FleetMetrics::new())
        .connect()
        .await
        .unwrap()
}

struct Setup {
    writer: Arc<dyn KeyStore>,
    handles: Vec<CacheHandle>,
    _caches: Vec<Arc<dyn KeyStore>>,
    _subscribers: Vec<Subscriber>,
    key: KeyName,
}

async fn setup() -> Setup {
    let store_id = format!("bench{}x{}", std::process::id(), fastrand::u32(..));
    let backend: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let writer_link = link().await;
    let publisher = Publisher::builder(&writer_link, &store_id).build().unwrap();
    let writer = PublishLayer::new(publisher).layer(backend.clone());
    let key = KeyName::new("fleet-bench/k").unwrap();
    writer.store(&key, "v".into()).await.unwrap();
    let mut links = Vec::new();
    for _ in 0..10 {
        links.push(link().await);
    }
    let mut handles = Vec::new();
    let mut caches = Vec::new();
    let mut subscribers = Vec::new();
    for i in 0..CACHES {
        let cached = CacheLayer::new()
            .ttl(Duration::from_secs(3600))
            .wrap(backend.clone());
        let handle = cached.handle();
        subscribers.push(
            Subscriber::builder(&links[i % links.len()], &store_id, handle.clone())
                .min_interval(Duration::from_micros(1))
                .spawn()
                .unwrap(),
        );
        handles.push(handle);
        caches.push(Arc::new(cached) as Arc<dyn KeyStore>);
    }
    while !subscribers.iter().all(Subscriber::is_following) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Setup {
        writer,
        handles,
        _caches: caches,
        _subscribers: subscribers,
        key,
    }
}

impl Setup {
    /// Loads the key in every cache, writes it, and returns the time from the write's start
    /// until no cache holds the old version.
    async fn one_write(&self) -> Duration {
        for cache in &self._caches {
            cache.get(&self.key).await.unwrap();
        }
        let start = Instant::now();
        self.writer.store(&self.key, "v".into()).await.unwrap();
        loop {
            if self
                .handles
                .iter()
                .all(|h| h.cached_version(&self.key).is_none())
            {
                return start.elapsed();
            }
            tokio::task::yield_now().await;
        }
    }
}

fn lag(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let setup = runtime.block_on(setup());
    let mut group = c.benchmark_group("fleet");
    group.sample_size(50);
    group.bench_function("write_to_invalidated_in_100_caches", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += setup.one_write().await;
                }
                total
            })
        });
    });
    group.finish();
    let mut samples: Vec<Duration> = runtime.block_on(async {
        let mut samples = Vec::new();
        for _ in 0..500 {
            samples.push(setup.one_write().await);
        }
        samples
    });
    samples.sort();
    eprintln!(
        "lag from a write to invalidation in all {CACHES} caches over 500 writes: p50 {:?}, p99 {:?}, max {:?}",
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
        samples[samples.len() - 1]
    );
}

fn publish_overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (plain, published) = runtime.block_on(async {
        let backend: Arc<dyn KeyStore> = match (
            std::env::var("KMS_TEST_VAULT_ADDR"),
            std::env::var("KMS_TEST_VAULT_TOKEN"),
        ) {
            (Ok(addr), Ok(token)) => {
                let client = kms_backend_vault::VaultClient::builder(addr)
                    .auth(kms_backend_vault::VaultAuth::token(token))
                    .build()
                    .await
                    .unwrap();
                Arc::new(
                    kms_backend_vault::VaultStore::builder(client)
                        .build()
                        .unwrap(),
                )
            }
            _ => Arc::new(MemoryStore::new()),
        };
        let link = link().await;
        let publisher = Publisher::builder(&link, format!("bench{}", std::process::id()))
            .build()
            .unwrap();
        let published = PublishLayer::new(publisher).layer(backend.clone());
        (backend, published)
    });
    let label = plain.backend();
    let key = KeyName::new(format!("fleet-bench/w{}", std::process::id())).unwrap();
    let mut group = c.benchmark_group(format!("write_{label}"));
    group.bench_function("plain", |b| {
        b.to_async(&runtime)
            .iter(|| async { plain.store(&key, "v".into()).await.unwrap() });
    });
    group.bench_function("published", |b| {
        b.to_async(&runtime)
            .iter(|| async { published.store(&key, "v".into()).await.unwrap() });
    });
    group.finish();
}

criterion_group!(benches, lag, publish_overhead);
criterion_main!(benches);
