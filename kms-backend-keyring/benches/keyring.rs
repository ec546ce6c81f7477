//! Cost of the keyring store: get, store (lock + index read + write + read-back) and list, over the
//! in-memory `keyring_core::mock` store (the crate's own overhead, spawn_blocking included) and,
//! when run inside `keyctl session -` with `KMS_TEST_KEYUTILS=1`, over the real kernel keyring.
//!
//! `cargo bench -p kms-backend-keyring --bench keyring -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kms_backend_keyring::{KeyringBackend, KeyringStore};
use kms_core::{KeyName, KeyPrefix, KeyStore, SecretValue};

fn bench_store(c: &mut Criterion, label: &str, backend: KeyringBackend) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let service = format!("kms-bench-{label}-{}", std::process::id());
    let lock_file = std::env::temp_dir().join(format!("{service}.lock"));
    let store = KeyringStore::builder(&service)
        .backend(backend)
        .lock_file(&lock_file)
        .build_blocking()
        .unwrap();
    let key = KeyName::new("bench/key").unwrap();
    let value = SecretValue::copy_from_slice(&[7; 64]);
    rt.block_on(async {
        for i in 0..20 {
            let k = KeyName::new(format!("bench/k{i}")).unwrap();
            store.store(&k, value.clone()).await.unwrap();
        }
        store.store(&key, value.clone()).await.unwrap();
    });
    let mut group = c.benchmark_group(format!("keyring/{label}"));
    group.bench_function("get", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(store.get(&key).await.unwrap()) })
    });
    group.bench_function("store_overwrite", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(store.store(&key, value.clone()).await.unwrap()) })
    });
    group.bench_function("list_21", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(store.list(&KeyPrefix::all()).await.unwrap()) })
    });
    group.finish();
    // Leave no keys or lock file behind.
    rt.block_on(async {
        for k in store.list(&KeyPrefix::all()).await.unwrap() {
            store.remove(&k).await.unwrap();
        }
    });
    std::fs::remove_file(&lock_file).ok();
}

fn benches(c: &mut Criterion) {
    bench_store(
        c,
        "mock",
        KeyringBackend::Custom {
            store: keyring_core::mock::Store::new().unwrap(),
            max_value_len: 4096,
        },
    );
    if std::env::var_os("KMS_TEST_KEYUTILS").is_some() {
        bench_store(c, "keyutils", KeyringBackend::KeyUtils);
    }
}

criterion_group!(keyring, benches);
criterion_main!(keyring);
