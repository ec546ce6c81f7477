//! Rotation metrics: counters by outcome, the last rotation's time, no key in any label.

use std::sync::Arc;

use kms_core::rotation::Rotation;
use kms_core::{ErrorKind, KeyName, KeyStoreExt, MemoryStore};
use kms_metrics::KmsMetrics;
use kms_metrics::prometheus_client::encoding::text::encode;
use kms_metrics::prometheus_client::registry::Registry;

fn scrape(registry: &Registry) -> String {
    let mut out = String::new();
    encode(&mut out, registry).unwrap();
    out
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn rotations_are_counted_by_outcome_without_key_labels() {
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let name = metrics.store_name("payments").unwrap();
    let observer = metrics.rotation_observer("memory", Some(&name));
    let before = scrape(&registry);
    assert_eq!(
        value(
            &before,
            r#"kms_key_rotations_total{backend="memory",store="payments",status="failure"}"#
        ),
        Some(0.0),
        "{before}"
    );
    let store = MemoryStore::new();
    store.put("secret/db-password", "old").await.unwrap();
    let key = KeyName::new("secret/db-password").unwrap();
    let rotation = Rotation::new().observer(observer);
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64;
    rotation.run(&store, &key).await.unwrap();
    rotation.run(&store, &key).await.unwrap();
    let missing = KeyName::new("secret/missing").unwrap();
    let err = rotation.run(&store, &missing).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let text = scrape(&registry);
    let at = |status: &str| {
        value(
            &text,
            &format!(
                r#"kms_key_rotations_total{{backend="memory",store="payments",status="{status}"}}"#
            ),
        )
    };
    assert_eq!(at("success"), Some(2.0), "{text}");
    assert_eq!(at("failure"), Some(1.0), "{text}");
    assert_eq!(at("conflict"), Some(0.0), "{text}");
    let last = value(
        &text,
        r#"kms_key_last_rotation_timestamp_seconds{backend="memory",store="payments"}"#,
    )
    .unwrap();
    assert!(last >= start && last < start + 600.0, "{last} {start}");
    assert!(
        !text.contains("db-password"),
        "a key name in a label: {text}"
    );
}

#[tokio::test]
async fn a_conflict_is_its_own_status() {
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let observer = metrics.rotation_observer("memory", None);
    let store = Arc::new(kms_core::fault::FaultStore::new(MemoryStore::new()));
    store.put("k", "v").await.unwrap();
    store
        .handle()
        .fail_next(kms_core::Operation::Store, 1, ErrorKind::Conflict);
    let err = Rotation::new()
        .observer(observer)
        .run(store.as_ref(), &KeyName::new("k").unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let text = scrape(&registry);
    assert_eq!(
        value(
            &text,
            r#"kms_key_rotations_total{backend="memory",store="memory",status="conflict"}"#
        ),
        Some(1.0),
        "{text}"
    );
}
