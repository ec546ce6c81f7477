//! AWS Secrets Manager behind the full stack, and AWS KMS envelope encryption over memory.
//!
//! `cargo run -p kms-examples --bin aws -- [ENDPOINT]` — ENDPOINT defaults to the moto
//! emulator at `http://127.0.0.1:5000` (start it with
//! `moto_server -H 127.0.0.1 -p 5000`, or run `scripts/test`, which installs it). Pass `aws`
//! to use the real AWS endpoints with the default credential chain and region.

use std::sync::Arc;

use kms_backend_aws::sdk::aws_sdk_kms;
use kms_backend_aws::{AwsConnection, AwsKmsProvider, Deletion, SecretsManagerStore, VersionStage};
use kms_cache::CacheLayer;
use kms_core::envelope::EnvelopeLayer;
use kms_core::{
    CircuitBreakerLayer, EncryptionContext, KeyName, KeyPrefix, KeyStore, MemoryStore, RetryLayer,
    StoreBuilder, TimeoutLayer,
};
use kms_metrics::KmsMetrics;
use kms_metrics::prometheus_client::encoding::text::encode;
use kms_metrics::prometheus_client::registry::Registry;

#[tokio::main]
async fn main() -> Result<(), kms_core::Error> {
    let endpoint = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:5000".into());
    let connection = if endpoint == "aws" {
        AwsConnection::new()
    } else {
        // The emulator accepts any credentials; real endpoints use the default chain.
        AwsConnection::new()
            .endpoint_url(&endpoint)
            .region("us-east-1")
            .static_credentials("testing", "testing".to_owned(), None)
    };
    println!("connection: {connection:?}");
    let config = connection.load().await?;

    // Secrets Manager, under a namespace, behind metrics → cache → breaker/retry/timeout.
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let sm = SecretsManagerStore::builder(&config)
        .namespace(&format!("kms-example-{}", std::process::id()))?
        .description("written by the kms-examples aws program")
        .tag("owner", "kms-examples")
        .deletion(Deletion::Force)?
        .build()?;
    let store = StoreBuilder::new(sm.clone())
        .layer(metrics.layer().health_probe(None))
        .layer(CacheLayer::new().observer(metrics.cache_observer("aws")))
        .resilience(
            CircuitBreakerLayer::new().on_state_change(metrics.circuit_state_recorder("aws")),
            RetryLayer::new(),
            TimeoutLayer::new(),
        )
        .build();
    println!("stack: {store}");
    store.health().await?;

    let key = KeyName::new("db/password")?;
    let v1 = store.store(&key, "first password".into()).await?;
    let v2 = store.store(&key, "rotated password".into()).await?;
    println!(
        "stored {key}: versions {:?} then {:?}",
        v1.version, v2.version
    );
    let current = store.get(&key).await?;
    let previous = sm.get_stage(&key, &VersionStage::Previous).await?;
    println!(
        "AWSCURRENT is {} bytes (version {:?}); AWSPREVIOUS is {} bytes (version {:?})",
        current.value.len(),
        current.meta.version,
        previous.value.len(),
        previous.meta.version
    );
    store
        .store(&KeyName::new("api/token")?, "tok".into())
        .await?;
    let mut listed = store.list(&KeyPrefix::all()).await?;
    listed.sort();
    println!("listed: {listed:?}");
    for k in &listed {
        store.remove(k).await?;
    }
    match store.get(&key).await {
        Err(e) => println!("after remove: [{}] {e}", e.kind().as_str()),
        Ok(_) => println!("unexpected: still readable"),
    }

    // KMS envelope encryption over a store with no encryption of its own.
    let kms_key = if endpoint == "aws" {
        std::env::var("KMS_KEY_ID").map_err(|_| {
            kms_core::Error::new(
                kms_core::ErrorKind::Configuration,
                "set KMS_KEY_ID to a KMS key id or alias to run the envelope part against AWS",
            )
        })?
    } else {
        let created = aws_sdk_kms::Client::new(&config)
            .create_key()
            .description("kms-examples aws program")
            .send()
            .await
            .map_err(|e| {
                kms_core::Error::new(kms_core::ErrorKind::Unavailable, format!("CreateKey: {e}"))
            })?;
        created
            .key_metadata()
            .map(|m| m.key_id().to_owned())
            .unwrap_or_default()
    };
    // Instrumented: encrypt/decrypt/generate_data_key show up in the same metric families,
    // with backend="aws_kms".
    let kms = Arc::new(metrics.instrument_provider(AwsKmsProvider::new(&config, kms_key)?));
    let backing = Arc::new(MemoryStore::new());
    let sealed = StoreBuilder::new(backing.clone())
        .layer(
            EnvelopeLayer::new(kms.clone())
                .context(EncryptionContext::new().with("service", "kms-examples")),
        )
        .build();
    sealed.store(&key, "enveloped secret".into()).await?;
    let raw = backing.get(&key).await?;
    println!(
        "{kms}: stored {} ciphertext bytes in memory; reads back as {} plaintext bytes",
        raw.value.len(),
        sealed.get(&key).await?.value.len()
    );

    let mut text = String::new();
    encode(&mut text, &registry).expect("encoding to a String cannot fail");
    println!("metrics:");
    for line in text
        .lines()
        .filter(|l| l.starts_with("kms_key_operations_total") || l.starts_with("kms_key_cache_"))
        .filter(|l| !l.ends_with(" 0"))
    {
        println!("  {line}");
    }
    Ok(())
}
