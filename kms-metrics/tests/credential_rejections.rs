//! `<p>_key_credential_rejections_total{backend, store, outcome}`: one count per report of a
//! credential refused downstream, by what the cache did with it.

mod common;

use kms_cache::{CacheLayer, Rejection};
use kms_core::{KeyName, KeyStore, KeyStoreExt, MemoryStore, StoreBuilder};
use kms_metrics::KmsMetrics;
use kms_metrics::prometheus_client::registry::Registry;

use common::{scrape, value};

fn series(outcome: &str) -> String {
    format!(
        r#"kms_key_credential_rejections_total{{backend="memory",store="memory",outcome="{outcome}"}}"#
    )
}

#[tokio::test]
async fn every_report_is_counted_by_its_outcome() {
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let backend = std::sync::Arc::new(MemoryStore::new());
    backend.put("db/password", "old").await.unwrap();
    let cache = CacheLayer::new().observer(metrics.cache_observer("memory"));
    let handle = cache.handle();
    let store = StoreBuilder::from_arc(backend.clone()).layer(cache).build();
    let key = KeyName::new("db/password").unwrap();

    // Every outcome's series exists at zero before any report.
    let text = scrape(&registry);
    for outcome in Rejection::LABELS {
        assert_eq!(value(&text, &series(outcome)), 0.0, "{text}");
    }

    let served = store.get(&key).await.unwrap();
    let old = served.meta.version.clone().unwrap();
    backend.put("db/password", "new").await.unwrap(); // rotated below the cache
    assert_eq!(
        handle.report_rejected(&key, "no-such-version").await,
        Rejection::IgnoredUnknown
    );
    assert_eq!(
        handle.report_rejected(&key, &old).await,
        Rejection::Refreshed
    );
    let new = store.get(&key).await.unwrap().meta.version.unwrap();
    assert_eq!(
        handle.report_rejected(&key, &new).await,
        Rejection::RateLimited
    );

    let text = scrape(&registry);
    assert_eq!(value(&text, &series("ignored_unknown")), 1.0, "{text}");
    assert_eq!(value(&text, &series("refreshed")), 1.0, "{text}");
    assert_eq!(value(&text, &series("rate_limited")), 1.0, "{text}");
    assert_eq!(value(&text, &series("still_rejected")), 0.0, "{text}");
}
