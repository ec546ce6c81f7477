//! Client overhead of a KV v2 `get` and `store` against an in-process mock Vault (wiremock on
//! 127.0.0.1): request building, JSON, value decoding, error mapping, not Vault itself.

use criterion::{Criterion, criterion_group, criterion_main};
use kms_backend_vault::{VaultAuth, VaultClient, VaultStore};
use kms_core::{KeyName, KeyStore, SecretValue};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (store, _server) = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/auth/token/lookup-self"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"ttl": 0}})))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/sys/internal/ui/mounts/secret"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"data": {"path": "secret/", "type": "kv", "options": {"version": "2"}}}),
            ))
            .mount(&server)
            .await;
        let meta = json!({"version": 3, "created_time": "2026-01-01T00:00:00.123456Z"});
        Mock::given(method("GET"))
            .and(path("/v1/secret/data/bench/key"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"data": {"data": {"value": "x".repeat(64)}, "metadata": meta}}),
            ))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/secret/data/bench/key"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": meta})))
            .mount(&server)
            .await;
        let client = VaultClient::builder(server.uri())
            .auth(VaultAuth::token("bench"))
            .build()
            .await
            .unwrap();
        (VaultStore::builder(client).build().unwrap(), server)
    });
    let key = KeyName::new("bench/key").unwrap();
    c.bench_function("vault_kv2_get_64B", |b| {
        b.to_async(&rt)
            .iter(|| async { store.get(&key).await.unwrap() })
    });
    let binary = SecretValue::new((0..=255u8).cycle().take(4096).collect());
    c.bench_function("vault_kv2_store_4KiB_binary", |b| {
        b.to_async(&rt)
            .iter(|| async { store.store(&key, binary.clone()).await.unwrap() })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
