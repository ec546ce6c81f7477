//! What the instrumentation exports, checked on the encoded text a Prometheus scrape reads.

mod common;

use std::time::{Duration, SystemTime};

use kms_cache::CacheLayer;
use kms_core::fault::FaultStore;
use kms_core::{
    CircuitBreakerLayer, ErrorKind, KeyStoreExt, MemoryStore, Operation, RetryLayer, StoreBuilder,
    TimeoutLayer,
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
    // Not found is an answer, not a failure.
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
fn failure_summary_answers_the_encryption_metrics_report() {
    let recorder = FailureRecorder::new(FailureRecorderConfig::default());
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    // Two hours ago: inside 24 h, outside 1 h.
    recorder.record_at(
        now - 2 * hour,
        "decrypt",
        Some("key-old"),
        Some(ErrorKind::InvalidData),
        Duration::from_millis(8),
    );
    // key-flaky: 10 decrypts, 1 failed (10 %: problematic, the report's >= 10 %).
    for i in 0..10 {
        let failure = (i == 0).then_some(ErrorKind::InvalidData);
        recorder.record_at(
            now,
            "decrypt",
            Some("key-flaky"),
            failure,
            Duration::from_millis(12),
        );
    }
    // key-rare: 4 decrypts, 2 failed (50 % but fewer than 5 operations: not problematic).
    for i in 0..4 {
        let failure = (i < 2).then_some(ErrorKind::InvalidData);
        recorder.record_at(
            now,
            "decrypt",
            Some("key-rare"),
            failure,
            Duration::from_millis(12),
        );
    }
    // key-fine: 20 decrypts, all good; gets with not-found (answers, not failures).
    for _ in 0..20 {
        recorder.record_at(
            now,
            "decrypt",
            Some("key-fine"),
            None,
            Duration::from_millis(10),
        );
    }
    for _ in 0..5 {
        recorder.record_at(
            now,
            "get",
            Some("db/missing"),
            Some(ErrorKind::NotFound),
            Duration::ZERO,
        );
    }
    recorder.record_at(
        now,
        "generate_data_key",
        None,
        Some(ErrorKind::Timeout),
        Duration::from_millis(45),
    );
    recorder.record_at(
        now,
        "generate_data_key",
        None,
        None,
        Duration::from_millis(45),
    );

    let day = recorder.summary_at(now, 24 * hour);
    assert_eq!(day.timeframe_hours, 24.0);
    assert!(!day.truncated);
    assert_eq!(day.total_operations, 42);
    let hour_summary = recorder.summary_at(now, hour);
    assert_eq!(hour_summary.timeframe_hours, 1.0);
    assert_eq!(
        hour_summary.total_operations, 41,
        "the 2 h old record is outside 1 h"
    );

    let s = hour_summary;
    let rate = |op: &str| {
        s.failure_rates
            .iter()
            .find(|r| r.operation == op)
            .unwrap()
            .failure_rate
    };
    // Percent, as the report: 3 failed of 34 decrypts.
    assert!((rate("decrypt") - 300.0 / 34.0).abs() < 1e-9);
    assert_eq!(rate("generate_data_key"), 50.0);
    assert_eq!(rate("get"), 0.0, "not found is an answer");
    // By operation and reason.
    assert_eq!(s.top_failures[0].operation, "decrypt");
    assert_eq!(s.top_failures[0].reason, "invalid_data");
    assert_eq!(s.top_failures[0].count, 3);
    assert_eq!(s.top_failures[1].operation, "generate_data_key");
    assert_eq!(s.top_failures[1].reason, "timeout");
    assert_eq!(s.top_failures.len(), 2);
    // >= 5 decrypts and >= 10 % failed.
    assert_eq!(s.problematic_keys.len(), 1, "{:?}", s.problematic_keys);
    assert_eq!(s.problematic_keys[0].key_id, "key-flaky");
    assert_eq!(s.problematic_keys[0].total_operations, 10);
    assert_eq!(s.problematic_keys[0].failure_rate, 10.0);
    let decrypt_ok = s
        .metrics
        .iter()
        .find(|m| m.operation == "decrypt" && m.status == "success")
        .unwrap();
    assert_eq!(decrypt_ok.count, 31);
    let get_missing = s
        .metrics
        .iter()
        .find(|m| m.operation == "get" && m.status == "not_found")
        .unwrap();
    assert_eq!(get_missing.count, 5);

    let json = serde_json::to_value(&s).unwrap();
    for field in [
        "metrics",
        "failureRates",
        "topFailures",
        "timeframeHours",
        "truncated",
    ] {
        assert!(json.get(field).is_some(), "{field} in {json}");
    }
    assert_eq!(json["topFailures"][0]["reason"], "invalid_data");
    assert!(json["metrics"][0]["avg_duration"].as_f64().is_some());
}

#[test]
fn a_bounded_recorder_says_what_span_it_covers() {
    let recorder = FailureRecorder::new(FailureRecorderConfig {
        max_records: 100,
        queue: 16,
        ..FailureRecorderConfig::default()
    });
    let now = SystemTime::now();
    // 1000 records over the last 1000 minutes; only the last 100 fit.
    for i in 0..1000u64 {
        recorder.record_at(
            now - Duration::from_secs(60 * (1000 - i)),
            "get",
            None,
            None,
            Duration::ZERO,
        );
    }
    assert_eq!(recorder.len(), 100);
    let day = recorder.summary_at(now, Duration::from_secs(24 * 3600));
    assert!(day.truncated, "24 h asked, about 100 minutes held");
    assert!(
        (99 * 60..=101 * 60).contains(&day.covered_seconds),
        "{}",
        day.covered_seconds
    );
    assert!(day.total_operations <= 100);
    // A timeframe inside what is held is complete.
    let recent = recorder.summary_at(now, Duration::from_secs(30 * 60));
    assert!(!recent.truncated);
    assert_eq!(recent.covered_seconds, 30 * 60);
    assert_eq!(recent.total_operations, 30);
}

#[tokio::test]
async fn the_layer_feeds_the_failure_recorder() {
    let recorder = FailureRecorder::new(FailureRecorderConfig::default());
    let metrics = KmsMetrics::register(&mut Registry::default());
    let backend = FaultStore::new(MemoryStore::new());
    let faults = backend.handle();
    let store = StoreBuilder::new(backend)
        .layer(metrics.layer().failure_recorder(recorder.clone()))
        .build();
    store.put("k", "v").await.unwrap();
    let _ = store.get_value("missing").await;
    faults.fail_next(Operation::Get, 1, ErrorKind::Unavailable);
    let _ = store.get_value("k").await;
    let summary = recorder.summary(Duration::from_secs(3600));
    assert_eq!(summary.total_operations, 3);
    assert_eq!(summary.top_failures[0].operation, "get");
    assert_eq!(summary.top_failures[0].reason, "unavailable");
    assert!(
        !recorder
            .summary_json(Duration::from_secs(60))
            .contains("\"v\"")
    );
}

/// The monitor declines `get_now`: every read that passes it is an attempt on the backend
/// and is counted as one, so even a store below that could answer at once is sent to `get`.
#[tokio::test]
async fn the_monitor_counts_every_read_it_passes_and_answers_none_at_once() {
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let store = StoreBuilder::new(MemoryStore::new())
        .layer(metrics.backend_monitor().probe_interval(None))
        .layer(CacheLayer::new())
        .build();
    store.put("k", "v").await.unwrap();
    store.get_value("k").await.unwrap(); // fills the cache below the monitor
    let key = kms_core::KeyName::new("k").unwrap();
    assert!(store.get_now(&key).is_none());
    store.get_value("k").await.unwrap();
    let text = scrape(&registry);
    assert_eq!(
        value(
            &text,
            r#"kms_key_backend_requests_total{operation="get",backend="memory",store="memory",status="success"}"#
        ),
        2.0
    );
}
