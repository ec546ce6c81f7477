//! Quickstart: a stack over the embedded in-memory store.
//!
//! Stores, reads, lists and removes a few keys, then shows what a missing key and an invalid
//! name look like; at the end, opens the same kind of stack from one URI with the `kms` facade
//! (`kms::open`), as an operator would configure it. Run it with
//! `cargo run -p kms-examples --bin quickstart`.

use kms_cache::CacheLayer;
use kms_core::{
    CircuitBreakerLayer, ErrorKind, KeyName, KeyPrefix, KeyStore, KeyStoreExt, MemoryStore,
    RetryLayer, StoreBuilder, TimeoutLayer, ValidateLayer,
};

use kms_metrics::KmsMetrics;
use kms_metrics::prometheus_client::encoding::text::encode;
use kms_metrics::prometheus_client::registry::Registry;

#[tokio::main]
async fn main() -> Result<(), kms_core::Error> {
    // Services hold an `Arc<dyn KeyStore>`; layers are listed outermost first. The resilience
    // stack (circuit breaker over retry over a per-attempt timeout) sits right above the backend.
    // Metrics go into the service's own Prometheus registry; the cache reports into it too.
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let cache = CacheLayer::new().observer(metrics.cache_observer("memory"));
    let cache_stats = cache.handle();
    let breaker =
        CircuitBreakerLayer::new().on_state_change(metrics.circuit_state_recorder("memory"));
    let breaker_state = breaker.handle();
    let store = StoreBuilder::new(MemoryStore::new())
        .layer(ValidateLayer::new().max_value_len(4096))
        .layer(metrics.layer())
        .layer(cache)
        .resilience(breaker, RetryLayer::new(), TimeoutLayer::new())
        .build();
    println!("stack: {store}  (backend label: {})", store.backend());

    // Store a few keys. Values are `SecretValue`s: zeroized on drop, redacted in Debug.
    for (name, value) in [
        ("payments/db/password", "correct horse battery staple"),
        ("payments/api-key", "pk_live_0123456789"),
        ("search/api-key", "sk_0987654321"),
    ] {
        let meta = store.put(name, value).await?;
        println!(
            "stored  {name:<22} version {}",
            meta.version.as_deref().unwrap_or("-")
        );
    }

    // Rotate one: the memory store keeps previous versions.
    let key = KeyName::new("payments/db/password")?;
    store.store(&key, "Tr0ub4dor&3".into()).await?;
    let current = store.get(&key).await?;
    let previous = store.get_version(&key, "1").await?;
    println!(
        "read    {key:<22} version {} ({} bytes); version 1 still readable ({} bytes)",
        current.meta.version.as_deref().unwrap_or("-"),
        current.value.len(),
        previous.value.len(),
    );
    println!("debug   {:?}", current.value);

    // List by prefix.
    let mut payments = store.list(&KeyPrefix::new("payments/")?).await?;
    payments.sort();
    let names: Vec<&str> = payments.iter().map(KeyName::as_str).collect();
    println!("list    payments/ -> {names:?}");

    // Remove one, then show a not-found.
    store.delete("search/api-key").await?;
    let err = store.get_value("search/api-key").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    println!(
        "removed search/api-key; get now fails: [{}] {err}",
        err.kind().as_str()
    );

    // Invalid names are rejected before any backend call.
    let err = store.get_value("../../sys/policy/root").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    println!("invalid name: [{}] {err}", err.kind().as_str());

    // So are values over the limit.
    let err = store
        .put("payments/blob", vec![0u8; 10_000])
        .await
        .unwrap_err();
    println!("oversized value: [{}] {err}", err.kind().as_str());

    // Read the password a few more times: the cache answers.
    for _ in 0..5 {
        store.get(&key).await?;
    }
    let stats = cache_stats.stats();
    println!(
        "cache   {} hits, {} misses, {} entries",
        stats.hits, stats.misses, stats.entries
    );
    println!("circuit breaker: {}", breaker_state.state());

    // What Prometheus would scrape (a few of the series; no key names, no values).
    let mut text = String::new();
    encode(&mut text, &registry).expect("encoding to a String cannot fail");
    println!("metrics:");
    for line in text.lines().filter(|l| {
        l.starts_with("kms_key_operations_total")
            || l.starts_with("kms_key_cache_")
            || l.starts_with("kms_circuit")
    }) {
        println!("  {line}");
    }
    println!("done: {} keys left", store.list_sorted("").await?.len());

    // The same layers from one URI with the `kms` facade: what an operator can change (a TTL,
    // a retry budget, the backend itself) without a rebuild. `kms::Config::from_file` reads the
    // same options from `[stores.NAME]` tables; `KMS_STORES__NAME__CACHE__TTL=10m` overrides.
    let opened = kms::open(
        "memory://?validate.max_value_len=4096&cache.ttl=5m&breaker.min_calls=10\
         &retry.max_retries=3&timeout.all=5s&metrics.prefix=kms_quickstart",
    )
    .await?;
    opened.put("payments/api-key", "pk_live_0123456789").await?;
    println!("kms::open stack: {opened}");
    Ok(())
}
