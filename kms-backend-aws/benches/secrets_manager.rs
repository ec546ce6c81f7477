//! Client overhead of a Secrets Manager `get`/`store` and a KMS `decrypt` against an
//! in-process mock (wiremock on 127.0.0.1): SigV4 signing, JSON, error mapping and the SDK's
//! orchestrator, not AWS itself.

use criterion::{Criterion, criterion_group, criterion_main};
use kms_backend_aws::{AwsConnection, AwsKmsProvider, SecretsManagerStore};
use kms_core::{CryptoProvider, EncryptionContext, KeyName, KeyStore, SecretValue};
use serde_json::json;
use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn ok(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_json(body)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (store, kms, _server) = rt.block_on(async {
        let server = MockServer::start().await;
        let target = |t: &'static str| Mock::given(method("POST")).and(header("x-amz-target", t));
        target("secretsmanager.GetSecretValue")
            .respond_with(ok(json!({
                "Name": "bench/key", "VersionId": "v-1", "SecretString": "x".repeat(64),
                "VersionStages": ["AWSCURRENT"], "CreatedDate": 1.7e9
            })))
            .mount(&server)
            .await;
        target("secretsmanager.PutSecretValue")
            .respond_with(ok(json!({ "Name": "bench/key", "VersionId": "v-2" })))
            .mount(&server)
            .await;
        target("TrentService.Decrypt")
            .respond_with(ok(json!({
                "KeyId": "k", "Plaintext": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
            })))
            .mount(&server)
            .await;
        let config = AwsConnection::new()
            .region("us-east-1")
            .endpoint_url(server.uri())
            .static_credentials("bench", "bench".to_owned(), None)
            .load()
            .await
            .unwrap();
        (
            SecretsManagerStore::builder(&config).build().unwrap(),
            AwsKmsProvider::new(&config, "alias/bench").unwrap(),
            server,
        )
    });
    let key = KeyName::new("bench/key").unwrap();
    c.bench_function("secrets_manager_get_64B", |b| {
        b.to_async(&rt)
            .iter(|| async { store.get(&key).await.unwrap() })
    });
    let binary = SecretValue::new((0..=255u8).cycle().take(4096).collect());
    c.bench_function("secrets_manager_store_4KiB_binary", |b| {
        b.to_async(&rt)
            .iter(|| async { store.store(&key, binary.clone()).await.unwrap() })
    });
    let ctx = EncryptionContext::new().with("service", "bench");
    c.bench_function("kms_decrypt_data_key", |b| {
        b.to_async(&rt)
            .iter(|| async { kms.decrypt(&[1, 2, 3], &ctx).await.unwrap() })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
