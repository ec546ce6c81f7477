//! Instrumented vs bare `get` over `MemoryStore`, over the cache and over `ReadyStore` (see
//! `common/mod.rs`): one task (`get/...`), and two OS threads, each with its own current-thread
//! runtime, reading the same store at once (`get_2threads/...`: time per `get` in each thread;
//! an overhead flat against `get/...` means the shared series do not contend). `clock/raw_pair`
//! is the floor under any instrumented call: the two `quanta` raw reads the decorator makes
//! and their scaling to nanoseconds.

mod common;

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::KEYS;
use criterion::{Criterion, criterion_group, criterion_main};
use kms_core::KeyStore;
use kms_metrics::KmsMetrics;
use kms_metrics::prometheus_client::registry::Registry;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn stores() -> Vec<(&'static str, Arc<dyn KeyStore>)> {
    common::stores(&KmsMetrics::register(&mut Registry::default()))
}

fn get(c: &mut Criterion) {
    let rt = rt();
    let keys = common::keys();
    let mut g = c.benchmark_group("get");
    for (name, store) in stores() {
        rt.block_on(common::fill(&*store, &keys));
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
    let keys = common::keys();
    let mut g = c.benchmark_group("get_2threads");
    for (name, store) in stores() {
        rt().block_on(common::fill(&*store, &keys));
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

fn clock(c: &mut Criterion) {
    let clock = quanta::Clock::new();
    c.bench_function("clock/raw_pair", |b| {
        b.iter(|| {
            let start = clock.raw();
            let end = black_box(clock.raw());
            black_box(clock.delta_as_nanos(start, end))
        })
    });
}

criterion_group!(benches, get, get_two_threads, clock);
criterion_main!(benches);
