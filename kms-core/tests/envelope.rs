//! The envelope-encryption decorator over the in-memory store, with the local provider.

use std::sync::Arc;

use kms_core::envelope::{DataKeyCachePolicy, EnvelopeLayer};
use kms_core::{
    CryptoOperation, EncryptionContext, ErrorKind, KeyName, KeyStore, KeyStoreExt,
    LocalKeyProvider, MemoryStore, SecretValue, StoreBuilder,
};

fn ctx() -> EncryptionContext {
    EncryptionContext::new().with("service", "payments")
}

mod conformance_default_policy {
    use super::*;
    kms_core::conformance_tests!(
        EnvelopeLayer::new(Arc::new(LocalKeyProvider::generate()))
            .context(ctx())
            .wrap(MemoryStore::new())
    );
}

mod conformance_no_key_reuse {
    use super::*;
    kms_core::conformance_tests!(
        EnvelopeLayer::new(Arc::new(LocalKeyProvider::generate()))
            .cache_policy(DataKeyCachePolicy::disabled())
            .wrap(MemoryStore::new())
    );
}

#[tokio::test]
async fn local_provider_passes_provider_conformance() {
    kms_core::conformance::crypto_provider_conformance(&LocalKeyProvider::generate()).await;
}

#[tokio::test]
async fn the_inner_store_holds_only_ciphertext() {
    let inner = Arc::new(MemoryStore::new());
    let store = EnvelopeLayer::new(Arc::new(LocalKeyProvider::generate())).wrap(inner.clone());
    store
        .put("db/password", "correct horse battery staple")
        .await
        .unwrap();
    let raw = inner.get_value("db/password").await.unwrap();
    assert!(raw.expose_secret().starts_with(b"KMSE\x01\x01"));
    assert!(!raw.expose_secret().windows(5).any(|w| w == b"horse"));
    assert_eq!(
        store
            .get_value("db/password")
            .await
            .unwrap()
            .expose_str()
            .unwrap(),
        "correct horse battery staple"
    );
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_name_does_not_decrypt() {
    let inner = Arc::new(MemoryStore::new());
    let store = EnvelopeLayer::new(Arc::new(LocalKeyProvider::generate())).wrap(inner.clone());
    store.put("alice/token", "alice-secret").await.unwrap();
    let raw = inner.get_value("alice/token").await.unwrap();
    inner.put("mallory/token", raw).await.unwrap();
    let err = store.get_value("mallory/token").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert!(err.to_string().contains("failed authentication"), "{err}");
}

#[tokio::test]
async fn another_encryption_context_fails_clearly() {
    let provider = Arc::new(LocalKeyProvider::generate());
    let inner = Arc::new(MemoryStore::new());
    let writer = EnvelopeLayer::new(provider.clone())
        .context(ctx())
        .wrap(inner.clone());
    let reader = EnvelopeLayer::new(provider)
        .context(EncryptionContext::new().with("service", "search"))
        .wrap(inner.clone());
    writer.put("k", "v").await.unwrap();
    let err = reader.get_value("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
}

#[tokio::test]
async fn tampering_and_plaintext_values_are_invalid_data() {
    let inner = Arc::new(MemoryStore::new());
    let store = EnvelopeLayer::new(Arc::new(LocalKeyProvider::generate())).wrap(inner.clone());
    store.put("k", "value").await.unwrap();
    let mut raw = inner.get_value("k").await.unwrap().expose_secret().to_vec();
    let last = raw.len() - 1;
    raw[last] ^= 0x80;
    inner.put("k", raw).await.unwrap();
    assert_eq!(
        store.get_value("k").await.unwrap_err().kind(),
        ErrorKind::InvalidData
    );

    inner.put("plain", "not encrypted").await.unwrap();
    let err = store.get_value("plain").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert!(err.to_string().contains("bad magic"), "{err}");
    assert!(!err.to_string().contains("not encrypted"), "{err}");
}

#[tokio::test]
async fn data_keys_are_reused_up_to_max_uses() {
    let provider = Arc::new(LocalKeyProvider::generate());
    let policy = DataKeyCachePolicy {
        max_uses: 3,
        ..DataKeyCachePolicy::default()
    };
    let store = EnvelopeLayer::new(provider.clone())
        .cache_policy(policy)
        .wrap(MemoryStore::new());
    for i in 0..7 {
        store.put(&format!("k{i}"), "v").await.unwrap();
    }
    // 7 writes, 3 per data key: 3 data keys.
    assert_eq!(provider.calls(CryptoOperation::GenerateDataKey), 3);
    for i in 0..7 {
        store.get_value(&format!("k{i}")).await.unwrap();
    }
    // Issued keys are remembered for decryption: no provider call on read.
    assert_eq!(provider.calls(CryptoOperation::Decrypt), 0);
}

#[tokio::test]
async fn a_fresh_reader_decrypts_each_data_key_once() {
    let provider = Arc::new(LocalKeyProvider::generate());
    let inner = Arc::new(MemoryStore::new());
    let writer = EnvelopeLayer::new(provider.clone()).wrap(inner.clone());
    for i in 0..5 {
        writer.put(&format!("k{i}"), "v").await.unwrap();
    }
    let reader = EnvelopeLayer::new(provider.clone()).wrap(inner.clone());
    for _ in 0..3 {
        for i in 0..5 {
            reader.get_value(&format!("k{i}")).await.unwrap();
        }
    }
    assert_eq!(provider.calls(CryptoOperation::GenerateDataKey), 1);
    assert_eq!(
        provider.calls(CryptoOperation::Decrypt),
        1,
        "one data key, decrypted once, then cached"
    );

    let uncached = EnvelopeLayer::new(provider.clone())
        .cache_policy(DataKeyCachePolicy::disabled())
        .wrap(inner);
    for i in 0..5 {
        uncached.get_value(&format!("k{i}")).await.unwrap();
    }
    assert_eq!(provider.calls(CryptoOperation::Decrypt), 6);
}

#[tokio::test]
async fn versions_decrypt_too() {
    let store = EnvelopeLayer::new(Arc::new(LocalKeyProvider::generate())).wrap(MemoryStore::new());
    let key = KeyName::new("rotating").unwrap();
    let v1 = store.store(&key, SecretValue::from("one")).await.unwrap();
    store.store(&key, SecretValue::from("two")).await.unwrap();
    let old = store
        .get_version(&key, v1.version.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(old.value.expose_str().unwrap(), "one");
}

#[test]
fn debug_and_display_never_show_keys() {
    let provider = Arc::new(LocalKeyProvider::generate());
    let layer = EnvelopeLayer::new(provider.clone()).context(ctx());
    let shown = format!("{layer:?} {provider:?}");
    assert!(shown.contains("[REDACTED]"), "{shown}");
    assert!(
        shown.contains("payments"),
        "the context is not secret: {shown}"
    );
    let store = StoreBuilder::new(MemoryStore::new()).layer(layer).build();
    assert_eq!(store.to_string(), "Envelope(local, Memory)");
    assert!(LocalKeyProvider::from_key(SecretValue::from("short")).is_err());
}
