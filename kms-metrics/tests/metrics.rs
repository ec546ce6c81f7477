//! What the instrumentation exports, checked on the encoded text a Prometheus scrape reads.

mod common;

use std::time::{Duration, SystemTime};

use kms_cache::CacheLayer;
use kms_core::fault::FaultStore;
use kms_core::{
    CircuitBreakerLayer, ErrorKind, KeyName, KeyStoreExt, MemoryStore, Operation, RetryLayer,
    StoreBuilder, TimeoutLayer,
};
use kms_metrics::prometheus_client::registry::Registry;
use kms_metrics::{FailureRecorder, FailureRecorderConfig, HealthStatus, KmsMetrics};

use common::{Captured, scrape, value};

#[tokio::test]
async fn operations_errors_and_durations_are_counted() {
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let store = StoreBuilder::new(MemoryStore::new())
        .layer(metrics.layer())
        .layer(metrics.backend_monitor().probe_interval(None))
        .build();
    store.put("app/db-password", "hunter2-value").await.unwrap();
    for _ in 0..3 {
        store.get_value("app/db-password").await.unwrap();
    }
    assert!(store.get_value("app/missing").await.is_err());
    store.delete("app/db-password").await.unwrap();
    store.list_sorted("app/").await.unwrap();

    let text = scrape(&registry);
    let ops = |op: &str, status: &str| {
        value(
            &text,
            &format!(
                r#"kms_key_operations_total{{operation="{op}",backend="memory",store="memory",status="{status}"}}"#
            ),
        )
    };
    assert_eq!(ops("get", "success"), 3.0);
    // Not found is an answer, not a failure (issue 20, input 2).
    assert_eq!(ops("get", "not_found"), 1.0);
    assert_eq!(ops("get", "failure"), 0.0);
    assert_eq!(ops("store", "success"), 1.0);
    assert_eq!(ops("remove", "success"), 1.0);
    assert_eq!(ops("list", "success"), 1.0);
    assert_eq!(
        value(
            &text,
            r#"kms_key_operation_errors_total{operation="get",backend="memory",store="memory",kind="not_found"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"kms_key_operation_duration_seconds_count{operation="get",backend="memory",store="memory"}"#
        ),
        4.0
    );
    let first_bucket = text
        .lines()
        .find(|l| l.starts_with("kms_key_operation_duration_seconds_bucket{"))
        .unwrap();
    assert!(
        first_bucket.contains("le=\"5e-5\"") || first_bucket.contains("le=\"0.00005\""),
        "{first_bucket}"
    );
    assert_eq!(
        value(
            &text,
            r#"kms_key_backend_up{backend="memory",store="memory"}"#
        ),
        1.0
    );
    // Bounded labels only: no key names, no values.
    assert!(
        !text.contains("db-password") && !text.contains("hunter2") && !text.contains("app/"),
        "{text}"
    );
}

#[tokio::test]
async fn a_custom_prefix_names_every_family() {
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register_with_prefix(&mut registry, "payments_secrets");
    let store = StoreBuilder::new(MemoryStore::new())
        .layer(metrics.layer().health_probe(None))
        .build();
    store.put("k", "v").await.unwrap();
    let text = scrape(&registry);
    assert!(
        text.contains("payments_secrets_key_operations_total{"),
        "{text}"
    );
    assert!(!text.contains("\nkms_"), "{text}");
}

#[tokio::test]
async fn cache_hits_misses_and_size_come_from_the_cache_observer() {
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let store = StoreBuilder::new(MemoryStore::new())
        .layer(metrics.layer().health_probe(None))
        .layer(CacheLayer::new().observer(metrics.cache_observer("memory")))
        .build();
    store.put("a", "1").await.unwrap();
    store.put("b", "2").await.unwrap();
    for _ in 0..4 {
        store.get_value("a").await.unwrap();
        store.get_value("b").await.unwrap();
    }
    let text = scrape(&registry);
    assert_eq!(
        value(
            &text,
            r#"kms_key_cache_hits_total{backend="memory",store="memory"}"#
        ),
        6.0
    );
    assert_eq!(
        value(
            &text,
            r#"kms_key_cache_misses_total{backend="memory",store="memory"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            r#"kms_key_cache_size{backend="memory",store="memory"}"#
        ),
        2.0
    );
}

#[tokio::test(start_paused = true)]
async fn the_circuit_gauge_follows_the_breaker() {
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let backend = FaultStore::new(MemoryStore::new());
    let faults = backend.handle();
    let breaker =
        CircuitBreakerLayer::new().on_state_change(metrics.circuit_state_recorder("memory"));
    let store = StoreBuilder::new(backend)
        .layer(metrics.layer().health_probe(None))
        .resilience(
            breaker,
            RetryLayer::new().max_retries(0),
            TimeoutLayer::new(),
        )
        .build();
    assert_eq!(metrics.circuit_state_gauge("memory"), Some(0));
    faults.fail_always(Operation::Get, ErrorKind::Unavailable);
    for _ in 0..10 {
        let _ = store.get_value("k").await;
    }
    assert_eq!(metrics.circuit_state_gauge("memory"), Some(1));
    assert_eq!(
        value(
            &scrape(&registry),
            r#"kms_circuit_breaker_state{backend="memory",store="memory"}"#
        ),
        1.0
    );
    assert_eq!(metrics.backend_up("memory"), Some(false));
    let report = metrics.health_report();
    assert_eq!(report.status, HealthStatus::Down);
    assert_eq!(report.backends[0].circuit_state, Some("open"));

    faults.clear();
    tokio::time::advance(Duration::from_secs(5)).await;
    let _ = store.get_value("k").await; // half-open trial: not found is a healthy answer
    assert_eq!(metrics.circuit_state_gauge("memory"), Some(2));
}

#[tokio::test(start_paused = true)]
async fn the_health_probe_drives_backend_up_and_stops_with_the_store() {
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let backend = FaultStore::new(MemoryStore::new());
    let faults = backend.handle();
    let store = StoreBuilder::new(backend)
        .layer(metrics.layer())
        .layer(
            metrics
                .backend_monitor()
                .probe_interval(Some(Duration::from_secs(10))),
        )
        .build();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(metrics.backend_up("memory"), Some(true));
    faults.fail_always(Operation::Health, ErrorKind::Unavailable);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(metrics.backend_up("memory"), Some(false));
    let report = metrics.health_report();
    assert_eq!(report.backends[0].last_error_kind, Some("unavailable"));
    assert!(report.backends[0].probe_latency_ms.is_some());
    assert!(report.to_json().contains("\"status\": \"down\""));

    faults.clear();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(metrics.backend_up("memory"), Some(true));
    assert_eq!(metrics.health_report().backends[0].last_error, None);
    let probes = faults.calls(Operation::Health);
    drop(store);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        faults.calls(Operation::Health) <= probes + 1,
        "the probe stopped with the store"
    );
}

#[tokio::test]
async fn audit_events_name_keys_never_values() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let metrics = KmsMetrics::register(&mut Registry::default());
    let store = StoreBuilder::new(MemoryStore::new())
        .layer(metrics.layer().health_probe(None))
        .build();
    store
        .put("payments/api-key", "sk_live_TOPSECRET")
        .await
        .unwrap();
    store.get_value("payments/api-key").await.unwrap();
    assert!(store.get_value("payments/nope").await.is_err());
    store.delete("payments/api-key").await.unwrap();

    let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let audit: Vec<&str> = out.lines().filter(|l| l.contains("kms::audit")).collect();
    assert_eq!(audit.len(), 3, "store, failed get, remove:\n{out}");
    assert!(
        audit[0].contains("operation=\"store\"") && audit[0].contains("payments/api-key"),
        "{out}"
    );
    assert!(audit[1].contains("error_kind=\"not_found\""), "{out}");
    assert!(!out.contains("TOPSECRET"), "{out}");
}

#[test]
fn failure_summary_finds_problematic_keys_and_top_reasons() {
    let recorder = FailureRecorder::new(FailureRecorderConfig {
        window: Duration::from_secs(3600),
        ..FailureRecorderConfig::default()
    });
    let now = SystemTime::now();
    // Outside the window: ignored and dropped.
    let fine_early = KeyName::new("db/fine").unwrap();
    recorder.record_at(
        now - Duration::from_secs(7200),
        Operation::Get,
        Some(&fine_early),
        Some(ErrorKind::Backend),
        Duration::ZERO,
    );
    let flaky = KeyName::new("db/flaky").unwrap();
    let fine = KeyName::new("db/fine").unwrap();
    for i in 0..10 {
        let failure = (i % 3 != 0).then_some(ErrorKind::Timeout);
        recorder.record_at(
            now,
            Operation::Get,
            Some(&flaky),
            failure,
            Duration::from_millis(20),
        );
        recorder.record_at(
            now,
            Operation::Get,
            Some(&fine),
            None,
            Duration::from_millis(2),
        );
    }
    recorder.record_at(
        now,
        Operation::Store,
        Some(&fine),
        Some(ErrorKind::PermissionDenied),
        Duration::ZERO,
    );

    let summary = recorder.summary_at(now);
    assert_eq!(summary.total_operations, 21);
    assert_eq!(summary.problematic_keys.len(), 1);
    assert_eq!(summary.problematic_keys[0].key, "db/flaky");
    assert_eq!(summary.problematic_keys[0].failures, 6);
    assert_eq!(summary.top_failure_reasons[0].reason, "timeout");
    assert_eq!(summary.top_failure_reasons[0].count, 6);
    assert!((summary.failure_rate["get"] - 0.3).abs() < 1e-9);
    assert_eq!(summary.failure_rate["store"], 1.0);
    let get_ok = summary
        .by_operation
        .iter()
        .find(|s| s.operation == "get" && s.status == "success")
        .unwrap();
    assert_eq!(get_ok.count, 14);
    assert_eq!(recorder.len(), 21, "the out-of-window record was dropped");
    let json = serde_json::to_string(&summary).unwrap();
    assert!(
        json.contains("\"problematic_keys\":[{\"key\":\"db/flaky\""),
        "{json}"
    );
}

#[test]
fn the_recorder_is_bounded() {
    let recorder = FailureRecorder::new(FailureRecorderConfig {
        max_records: 100,
        ..FailureRecorderConfig::default()
    });
    for _ in 0..1000 {
        recorder.record(Operation::Get, None, None, Duration::ZERO);
    }
    assert_eq!(recorder.len(), 100);
}

#[tokio::test]
async fn the_layer_feeds_the_failure_recorder() {
    let recorder = FailureRecorder::new(FailureRecorderConfig::default());
    let metrics = KmsMetrics::register(&mut Registry::default());
    let store = StoreBuilder::new(MemoryStore::new())
        .layer(
            metrics
                .layer()
                .health_probe(None)
                .failure_recorder(recorder.clone()),
        )
        .build();
    store.put("k", "v").await.unwrap();
    let _ = store.get_value("missing").await;
    let summary = recorder.summary();
    assert_eq!(summary.total_operations, 2);
    assert_eq!(summary.top_failure_reasons[0].reason, "not_found");
    assert!(!recorder.summary_json().contains("\"v\""));
}
