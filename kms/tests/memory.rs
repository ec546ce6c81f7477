//! The memory backend opened from a URI and from TOML, with validate + cache + resilience +
//! metrics from the same text, through the kms-core conformance suite.

mod common;

use kms::{Config, KeyStoreExt, MetricsRegistry, Opener};

fn uri() -> String {
    format!(
        "memory://?max_versions=5&{}",
        common::layer_query("kms_facade_memory_uri")
    )
}

fn toml() -> String {
    format!(
        "[stores.mem.memory]\nmax_versions = 5\n{}",
        common::layer_toml("mem", "kms_facade_memory_toml")
    )
}

mod from_uri {
    use super::*;
    kms_core::conformance_tests!(kms::open(&uri()).await.expect("opens"));
}

mod from_toml {
    use super::*;
    kms_core::conformance_tests!(
        Config::from_toml_str(&toml())
            .expect("parses")
            .open("mem")
            .await
            .expect("opens")
    );
}

mod plain_memory_uri {
    kms_core::conformance_tests!(kms::open("memory://").await.expect("opens"));
}

#[tokio::test]
async fn the_stack_is_the_documented_order_and_metrics_are_registered() {
    let registry = MetricsRegistry::new();
    let stack = Opener::new()
        .metrics_registry(registry.clone())
        .open(&uri())
        .await
        .unwrap();
    assert_eq!(stack.to_string(), common::layered("Memory"));
    let store = stack.store();
    store.put("a/b", "v").await.unwrap();
    store.get_value("a/b").await.unwrap(); // a miss: a write invalidates
    store.get_value("a/b").await.unwrap(); // a hit
    let text = registry.encode();
    assert!(
        text.contains("kms_facade_memory_uri_key_operations_total{"),
        "{text}"
    );
    assert!(
        text.contains(
            "kms_facade_memory_uri_key_cache_hits_total{backend=\"memory\",store=\"memory\"} 1"
        ),
        "{text}"
    );
    assert_eq!(stack.cache().unwrap().stats().hits, 1);
    assert_eq!(
        stack.breaker().unwrap().state(),
        kms_core::CircuitState::Closed
    );
    // The same text as TOML builds the same stack.
    let from_toml = Opener::new()
        .metrics_registry(registry)
        .open_named(&Config::from_toml_str(&toml()).unwrap(), "mem")
        .await
        .unwrap();
    assert_eq!(from_toml.to_string(), stack.to_string());
}

#[tokio::test]
async fn options_reach_the_builders() {
    observes!("memory.max_versions", "memory.max_value_len");
    // max_versions = 1 keeps only the current version.
    let store = kms::open("memory://?max_versions=1").await.unwrap();
    store.put("k", "one").await.unwrap();
    store.put("k", "two").await.unwrap();
    let key = kms_core::KeyName::new("k").unwrap();
    assert!(store.get_version(&key, "1").await.is_err());
    // validate.max_value_len is enforced at the top.
    let store = kms::open("memory://?validate.max_value_len=4")
        .await
        .unwrap();
    let err = store.put("k", "12345").await.unwrap_err();
    assert_eq!(err.kind(), kms_core::ErrorKind::InvalidInput);
    // memory.max_value_len reaches the store.
    let store = kms::open("memory://?max_value_len=3").await.unwrap();
    assert_eq!(store.capabilities().max_value_len, 3);
    // A layer turned off is not in the stack.
    let store = kms::open("memory://?cache.ttl=1m&cache.enabled=false")
        .await
        .unwrap();
    assert_eq!(store.to_string(), "Memory");
}

#[tokio::test]
async fn envelope_with_a_local_key_from_the_environment_file() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("master.key");
    std::fs::write(&key_file, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").unwrap();
    let config = Config::from_toml_str(&format!(
        r#"
[stores.sealed.memory]
[stores.sealed.envelope]
provider = "local"
master_key = "file:{}"
context.tenant = "acme"
key_cache.max_age = "1m"
key_cache.max_uses = 100
key_cache.max_decrypted = 10
"#,
        key_file.display()
    ))
    .unwrap();
    let store = config.open("sealed").await.unwrap();
    assert_eq!(store.to_string(), "Envelope(local, Memory)");
    store.put("x", "plaintext").await.unwrap();
    assert_eq!(
        store.get_value("x").await.unwrap().expose_str().unwrap(),
        "plaintext"
    );
}

mod envelope_local_ephemeral {
    use super::*;
    kms_core::conformance_tests!(
        kms::open(&format!(
            "memory://?envelope.provider=local-ephemeral&envelope.context.suite=conformance&{}",
            common::layer_query("kms_facade_memory_envelope")
        ))
        .await
        .expect("opens")
    );
}
