//! The instrumentation layer's spans reach OpenTelemetry through `tracing-opentelemetry`, with
//! the fields dashboards and trace queries use, and without values.

use kms_core::{KeyStoreExt, MemoryStore, StoreBuilder};
use kms_metrics::KmsMetrics;
use kms_metrics::prometheus_client::registry::Registry;

#[tokio::test]
async fn operations_become_opentelemetry_spans_with_outcome_fields() {
    let (subscriber, provider, exporter) = kms_examples::otel::subscriber();
    let _guard = tracing::subscriber::set_default(subscriber);
    let metrics = KmsMetrics::register(&mut Registry::default());
    let store = StoreBuilder::new(MemoryStore::new())
        .layer(metrics.layer().health_probe(None))
        .build();
    store.put("db/password", "s3cret-value").await.unwrap();
    store.get_value("db/password").await.unwrap();
    assert!(store.get_value("db/missing").await.is_err());
    store.list_sorted("db/").await.unwrap();
    store.delete("db/password").await.unwrap();
    provider.force_flush().unwrap();

    let spans = kms_examples::otel::kms_spans(&exporter);
    let names: Vec<&str> = spans.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["kms.store", "kms.get", "kms.get", "kms.list", "kms.remove"]
    );
    for (name, attributes) in &spans {
        let has = |kv: &str| attributes.iter().any(|a| a == kv);
        assert!(has("backend=memory"), "{name}: {attributes:?}");
        assert!(
            attributes.iter().any(|a| a.starts_with("latency_us=")),
            "{name}: {attributes:?}"
        );
        assert!(
            !attributes.iter().any(|a| a.contains("s3cret")),
            "{name}: {attributes:?}"
        );
    }
    assert!(
        spans[2].1.contains(&"outcome=not_found".to_owned())
            && spans[2].1.contains(&"error_kind=not_found".to_owned())
    );
    assert!(spans[1].1.contains(&"outcome=success".to_owned()));
}
