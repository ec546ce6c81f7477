//! Closed-path overhead of each resilience layer over `MemoryStore::get`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kms_core::{
    CircuitBreaker, CircuitBreakerLayer, KeyName, KeyStore, MemoryStore, Retry, RetryLayer,
    StoreBuilder, Timeout, TimeoutLayer, Validate, ValidateLayer,
};

fn seeded() -> MemoryStore {
    MemoryStore::new()
}

// Run: cargo bench -p kms-core --bench resilience -- --warm-up-time 1 --measurement-time 3

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let key = KeyName::new("bench/key").expect("valid name");
    let mut group = c.benchmark_group("get");

    macro_rules! case {
        ($name:expr, $store:expr) => {{
            let store = $store;
            rt.block_on(async { store.store(&key, "value".into()).await.expect("seed") });
            group.bench_function($name, |b| {
                b.to_async(&rt)
                    .iter(|| async { black_box(store.get(&key).await.expect("get")) })
            });
        }};
    }

    case!("memory", seeded());
    // A plain forwarding decorator: the cost every async_trait layer pays (one boxed future),
    // so `retry`/`timeout`/`breaker` minus `validate` is each layer's own logic.
    case!("validate", Validate::new(seeded(), ValidateLayer::new()));
    case!("retry", Retry::new(seeded(), RetryLayer::new()));
    case!("timeout", Timeout::new(seeded(), TimeoutLayer::new()));
    case!(
        "breaker",
        CircuitBreaker::new(seeded(), &CircuitBreakerLayer::new())
    );
    case!(
        "stack_dyn",
        StoreBuilder::new(seeded()).default_resilience().build()
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
