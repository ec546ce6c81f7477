//! What the metrics and the health report say during an outage, one test per situation, on
//! the recommended stack (`kms_core::layers`) over a `FaultStore(Memory)`.

mod common;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use kms_cache::CacheLayer;
use kms_core::fault::{FaultHandle, FaultStore};
use kms_core::{
    Capabilities, CircuitBreakerLayer, ErrorKind, KeyName, KeyPrefix, KeyStore, KeyStoreExt,
    MemoryStore, Operation, RetryLayer, SecretMeta, SecretValue, StoreBuilder, StoredSecret,
    TimeoutLayer, async_trait,
};
use kms_metrics::prometheus_client::registry::Registry;
use kms_metrics::{HealthStatus, KmsMetrics, StoreName};

use common::{Captured, scrape, value};

struct Stack {
    store: Arc<dyn KeyStore>,
    faults: FaultHandle,
    registry: Registry,
    metrics: KmsMetrics,
    time: Arc<kms_cache::quanta::Mock>,
}

/// The recommended stack over a `FaultStore`; cache TTL 1 s (on a mock clock), stale-if-error
/// 15 min, no retries, probe every second.
fn stack() -> Stack {
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let (clock, time) = kms_cache::quanta::Clock::mock();
    let backend = FaultStore::new(MemoryStore::new());
    let faults = backend.handle();
    let breaker = CircuitBreakerLayer::new();
    let store = StoreBuilder::new(backend)
        .layer(metrics.layer())
        .layer(
            CacheLayer::new()
                .ttl(Duration::from_secs(1))
                .jitter(0.0)
                .stale_if_error(Duration::from_secs(900))
                .clock(clock)
                .observer(metrics.cache_observer("memory")),
        )
        .layer(breaker.clone())
        .layer(RetryLayer::new().max_retries(0))
        .layer(
            metrics
                .backend_monitor()
                .circuit_breaker(&breaker.handle())
                .probe_interval(Some(Duration::from_secs(1))),
        )
        .layer(TimeoutLayer::new())
        .build();
    Stack {
        store,
        faults,
        registry,
        metrics,
        time,
    }
}

fn seal(faults: &FaultHandle) {
    for op in Operation::ALL {
        faults.fail_always(op, ErrorKind::Unavailable);
    }
}

/// Vault sealed for 15 s while the cache answers every read. `backend_up` is 0
/// in every sample of the outage, the circuit opens, the health report is `degraded` and
/// ready with the error's message, and all of it clears when the backend answers again.
#[tokio::test(start_paused = true)]
async fn backend_up_is_the_backends_own_reachability_through_a_whole_outage() {
    let s = stack();
    s.store.put("app/db", "s3cret-value").await.unwrap();
    s.store.get_value("app/db").await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(s.metrics.backend_up("memory"), Some(true));
    assert_eq!(s.metrics.health_report().status, HealthStatus::Ok);

    seal(&s.faults);
    s.time.increment(Duration::from_secs(2)); // every cached entry is past its TTL
    let mut samples = Vec::new();
    for _ in 0..150 {
        // 15 s of reads every 100 ms, all answered (stale) by the cache.
        let value = s.store.get_value("app/db").await.unwrap();
        assert_eq!(value.expose_secret(), b"s3cret-value");
        samples.push(s.metrics.backend_up("memory"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        samples.iter().all(|up| *up == Some(false)),
        "backend_up during the outage: {samples:?}"
    );
    let text = scrape(&s.registry);
    assert_eq!(
        value(
            &text,
            r#"kms_key_backend_up{backend="memory",store="memory"}"#
        ),
        0.0
    );
    // The circuit opened (and the state gauge says so).
    assert!(
        value(
            &text,
            r#"kms_circuit_breaker_state{backend="memory",store="memory"}"#
        ) >= 1.0
    );
    // The cache answered every read: 150 stale serves, and the reads were successes.
    assert_eq!(
        value(
            &text,
            r#"kms_key_cache_stale_serves_total{backend="memory",store="memory"}"#
        ),
        150.0
    );
    let report = s.metrics.health_report();
    assert_eq!(
        report.status,
        HealthStatus::Degraded,
        "{}",
        report.to_json()
    );
    assert!(report.is_ready() && report.ready);
    let b = &report.backends[0];
    assert_eq!(b.up, Some(false));
    assert!(b.cached);
    assert_eq!(b.last_error_kind, Some("unavailable"));
    assert!(
        b.last_error.as_deref().unwrap().contains("injected fault"),
        "{b:?}"
    );
    assert!(!report.to_json().contains("s3cret"));

    // Unsealed: the probe (beside the breaker) sees it within a second, and the error clears.
    s.faults.clear();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(s.metrics.backend_up("memory"), Some(true));
    let report = s.metrics.health_report();
    assert_eq!(report.backends[0].last_error, None);
    assert_eq!(report.backends[0].last_error_kind, None);
}

/// A cache hit never says anything about the backend.
#[tokio::test(start_paused = true)]
async fn cache_hits_do_not_mark_a_down_backend_up() {
    let s = stack();
    s.store.put("k", "v").await.unwrap();
    s.store.get_value("k").await.unwrap();
    s.faults
        .fail_always(Operation::Health, ErrorKind::Unavailable);
    tokio::time::sleep(Duration::from_millis(1100)).await; // one failed probe
    assert_eq!(s.metrics.backend_up("memory"), Some(false));
    for _ in 0..100 {
        s.store.get_value("k").await.unwrap(); // fresh hits
    }
    assert_eq!(s.metrics.backend_up("memory"), Some(false));
}

/// No sample before anything was learnt about the backend.
#[tokio::test]
async fn backend_up_has_no_sample_until_the_backend_said_something() {
    let metrics = KmsMetrics::register(&mut Registry::default());
    let _store = StoreBuilder::new(MemoryStore::new())
        .layer(metrics.backend_monitor().probe_interval(None))
        .build();
    assert_eq!(metrics.backend_up("memory"), None);
}

/// 10 good reads and 1 read of a missing key: the not-found is counted as
/// `status="not_found"`, never as a failure, in the service and in the backend series.
#[tokio::test(start_paused = true)]
async fn not_found_and_conflicts_are_outcomes_not_failures() {
    let s = stack();
    s.store.put("app/present", "v").await.unwrap();
    for round in 0..80 {
        for _ in 0..10 {
            s.store.get_value("app/present").await.unwrap();
        }
        let missing = s.store.get_value(&format!("app/missing-{round}")).await;
        assert_eq!(missing.unwrap_err().kind(), ErrorKind::NotFound);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let text = scrape(&s.registry);
    let ops = |status: &str| {
        value(
            &text,
            &format!(
                r#"kms_key_operations_total{{operation="get",backend="memory",store="memory",status="{status}"}}"#
            ),
        )
    };
    assert_eq!(ops("success"), 800.0);
    assert_eq!(ops("not_found"), 80.0);
    assert_eq!(ops("failure"), 0.0);
    assert_eq!(
        value(
            &text,
            r#"kms_key_backend_requests_total{operation="get",backend="memory",store="memory",status="failure"}"#
        ),
        0.0
    );
    assert!(
        value(
            &text,
            r#"kms_key_backend_requests_total{operation="get",backend="memory",store="memory",status="not_found"}"#
        ) >= 80.0
    );
    assert_eq!(s.metrics.backend_up("memory"), Some(true));
}

/// 2 slow backend fetches (120 ms) and 98 cache hits. The service-side p95 is a cache
/// hit's; the backend series holds exactly the 2 fetches, both above 100 ms.
#[tokio::test]
async fn backend_latency_is_measured_apart_from_cache_hits() {
    let s = stack();
    s.store.put("a", "1").await.unwrap();
    s.store.put("b", "2").await.unwrap();
    s.faults
        .set_latency(Operation::Get, Duration::from_millis(120));
    for _ in 0..49 {
        s.store.get_value("a").await.unwrap();
        s.store.get_value("b").await.unwrap();
    }
    let text = scrape(&s.registry);
    let backend = |series: &str| {
        value(
            &text,
            &format!(
                r#"kms_key_backend_request_duration_seconds_{series}{{operation="get",backend="memory",store="memory"}}"#
            ),
        )
    };
    assert_eq!(backend("count"), 2.0);
    assert!(backend("sum") >= 0.24, "{}", backend("sum"));
    assert_eq!(
        value(
            &text,
            r#"kms_key_backend_request_duration_seconds_bucket{le="0.1",operation="get",backend="memory",store="memory"}"#
        ),
        0.0
    );
    assert_eq!(
        value(
            &text,
            r#"kms_key_operation_duration_seconds_count{operation="get",backend="memory",store="memory"}"#
        ),
        98.0
    );
}

/// Every error kind and every status exists at 0 before the first failure.
#[tokio::test]
async fn error_series_exist_at_zero_before_the_first_error() {
    let s = stack();
    let text = scrape(&s.registry);
    for op in ["get", "store", "remove", "list"] {
        for kind in ErrorKind::ALL {
            assert_eq!(
                value(
                    &text,
                    &format!(
                        r#"kms_key_operation_errors_total{{operation="{op}",backend="memory",store="memory",kind="{}"}}"#,
                        kind.as_str()
                    )
                ),
                0.0
            );
        }
        for status in ["success", "not_found", "conflict", "failure", "abandoned"] {
            for family in ["kms_key_operations_total", "kms_key_backend_requests_total"] {
                assert_eq!(
                    value(
                        &text,
                        &format!(
                            r#"{family}{{operation="{op}",backend="memory",store="memory",status="{status}"}}"#
                        )
                    ),
                    0.0
                );
            }
        }
    }
    for cause in ["expired", "size", "explicit"] {
        assert_eq!(
            value(
                &text,
                &format!(
                    r#"kms_key_cache_evictions_total{{backend="memory",store="memory",cause="{cause}"}}"#
                )
            ),
            0.0
        );
    }
    assert_eq!(
        value(
            &text,
            r#"kms_key_cache_loads_total{backend="memory",store="memory",status="failure"}"#
        ),
        0.0
    );
}

/// 20 gets given up after 50 ms are counted as `abandoned`, with their latency, in
/// the service and the backend series; the in-flight gauge rises and falls back to 0.
#[tokio::test(start_paused = true)]
async fn abandoned_calls_are_counted_and_in_flight_is_exact() {
    let s = stack();
    s.faults.hang(Operation::Get);
    let store = s.store.clone();
    let pending = tokio::spawn(async move { store.get_value("slow").await });
    tokio::task::yield_now().await;
    let in_flight =
        r#"kms_key_operations_in_flight{operation="get",backend="memory",store="memory"}"#;
    assert_eq!(value(&scrape(&s.registry), in_flight), 1.0);
    pending.abort();
    let _ = pending.await;
    for i in 0..19 {
        let name = format!("slow-{i}");
        let call = s.store.get_value(&name);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), call)
                .await
                .is_err()
        );
    }
    let text = scrape(&s.registry);
    assert_eq!(value(&text, in_flight), 0.0);
    let abandoned = |family: &str| {
        value(
            &text,
            &format!(
                r#"{family}{{operation="get",backend="memory",store="memory",status="abandoned"}}"#
            ),
        )
    };
    assert_eq!(abandoned("kms_key_operations_total"), 20.0);
    // Below the cache the loads outlive their callers (the cache runs each load as a task of
    // its own, detached from the `get`s waiting for it): nothing is abandoned there; each
    // backend request ends with its own outcome, here the timeout layer's deadline.
    assert_eq!(abandoned("kms_key_backend_requests_total"), 0.0);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let later = scrape(&s.registry);
    let backend = |status: &str| {
        value(
            &later,
            &format!(
                r#"kms_key_backend_requests_total{{operation="get",backend="memory",store="memory",status="{status}"}}"#
            ),
        )
    };
    assert_eq!(backend("abandoned"), 0.0);
    assert_eq!(backend("failure"), 20.0, "{later}");
    assert_eq!(
        value(
            &text,
            r#"kms_key_operation_duration_seconds_count{operation="get",backend="memory",store="memory"}"#
        ),
        20.0
    );
    for status in ["success", "failure", "not_found"] {
        assert_eq!(
            value(
                &text,
                &format!(
                    r#"kms_key_operations_total{{operation="get",backend="memory",store="memory",status="{status}"}}"#
                )
            ),
            0.0
        );
    }
}

/// A store whose current version's creation time the test sets (rotation by another process).
#[derive(Debug)]
struct RotatingStore {
    created: Mutex<SystemTime>,
}

impl fmt::Display for RotatingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rotating")
    }
}

#[async_trait]
impl KeyStore for RotatingStore {
    fn backend(&self) -> &'static str {
        "rotating"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::new()
    }
    async fn get(&self, _key: &KeyName) -> kms_core::Result<StoredSecret> {
        Ok(StoredSecret {
            value: SecretValue::from("v"),
            meta: SecretMeta::default().created_at(*self.created.lock().unwrap()),
        })
    }
    async fn store(&self, _key: &KeyName, _value: SecretValue) -> kms_core::Result<SecretMeta> {
        Ok(SecretMeta::default())
    }
    async fn remove(&self, _key: &KeyName) -> kms_core::Result<()> {
        Ok(())
    }
    async fn list(&self, _prefix: &KeyPrefix) -> kms_core::Result<Vec<KeyName>> {
        Ok(Vec::new())
    }
    async fn health(&self) -> kms_core::Result<()> {
        Ok(())
    }
}

/// After a rotation the key age follows the new current version, although nothing
/// reads the old one again.
#[tokio::test(start_paused = true)]
async fn key_age_follows_the_current_version_after_a_rotation() {
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let backend = Arc::new(RotatingStore {
        created: Mutex::new(SystemTime::now() - Duration::from_secs(100 * 86_400)),
    });
    let (clock, time) = kms_cache::quanta::Clock::mock();
    let store = StoreBuilder::from_arc(backend.clone())
        .layer(metrics.layer())
        .layer(
            CacheLayer::new()
                .ttl(Duration::from_secs(60))
                .jitter(0.0)
                .clock(clock),
        )
        .layer(metrics.backend_monitor().probe_interval(None))
        .build();
    store.get_value("signing-key").await.unwrap();
    let age = |registry: &Registry| {
        value(
            &scrape(registry),
            r#"kms_key_age_seconds{backend="rotating",store="rotating"}"#,
        )
    };
    assert!((age(&registry) / 86_400.0 - 100.0).abs() < 0.01);
    // Rotated elsewhere: the backend now returns a version created a day ago.
    *backend.created.lock().unwrap() = SystemTime::now() - Duration::from_secs(86_400);
    store.get_value("signing-key").await.unwrap(); // a cache hit: still the old answer
    assert!(age(&registry) / 86_400.0 > 99.0);
    time.increment(Duration::from_secs(61)); // the cache reloads from the backend
    store.get_value("signing-key").await.unwrap();
    assert!(
        (age(&registry) / 86_400.0 - 1.0).abs() < 0.01,
        "{}",
        age(&registry)
    );
}

/// Stale serves, load failures and evictions are exported; one warning per outage.
#[tokio::test(start_paused = true)]
async fn stale_serves_load_failures_and_evictions_are_exported_with_one_warning() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let s = stack();
    s.store.put("a", "1").await.unwrap();
    s.store.get_value("a").await.unwrap();
    seal(&s.faults);
    s.time.increment(Duration::from_secs(2));
    for _ in 0..30 {
        s.store.get_value("a").await.unwrap();
    }
    s.faults.clear();
    tokio::time::sleep(Duration::from_secs(6)).await; // the breaker's open delay
    s.time.increment(Duration::from_secs(2));
    s.store.get_value("a").await.unwrap(); // a successful load ends the outage
    seal(&s.faults);
    s.time.increment(Duration::from_secs(2));
    s.store.get_value("a").await.unwrap(); // a second outage

    let text = scrape(&s.registry);
    let series = |name: &str| {
        value(
            &text,
            &format!(r#"kms_key_cache_{name}{{backend="memory",store="memory"}}"#),
        )
    };
    assert_eq!(series("stale_serves_total"), 31.0);
    assert!(
        value(
            &text,
            r#"kms_key_cache_loads_total{backend="memory",store="memory",status="failure"}"#
        ) >= 2.0
    );
    assert!(
        value(
            &text,
            r#"kms_key_cache_loads_total{backend="memory",store="memory",status="success"}"#
        ) >= 2.0
    );
    // A stale serve starts as a miss (no fresh entry): of the misses, all but the two reads
    // that loaded from a healthy backend were answered stale.
    let misses = series("misses_total");
    assert!(
        (31.0..=33.0).contains(&misses),
        "{misses} misses, 31 of them stale"
    );

    let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let warnings = out
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("stale-if-error"))
        .count();
    assert_eq!(warnings, 2, "one warning per outage:\n{out}");
}

/// Two stores of one backend type, named by the service, keep separate series.
#[tokio::test(start_paused = true)]
async fn two_stores_of_one_backend_type_keep_separate_series() {
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let build = |name: &StoreName| {
        let backend = FaultStore::new(MemoryStore::new());
        let faults = backend.handle();
        let store = StoreBuilder::new(backend)
            .layer(metrics.layer().store(name.clone()))
            .layer(
                metrics
                    .backend_monitor()
                    .store(name.clone())
                    .probe_interval(Some(Duration::from_secs(1))),
            )
            .build();
        (store, faults)
    };
    let eu = metrics.store_name("vault-eu").unwrap();
    let us = metrics.store_name("vault-us").unwrap();
    let (eu_store, eu_faults) = build(&eu);
    let (us_store, _us_faults) = build(&us);
    seal(&eu_faults);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(eu_store.put("k", "v").await.is_err());
    us_store.put("k", "v").await.unwrap();
    assert_eq!(metrics.backend_up_of("memory", Some(&eu)), Some(false));
    assert_eq!(metrics.backend_up_of("memory", Some(&us)), Some(true));
    let text = scrape(&registry);
    assert_eq!(
        value(
            &text,
            r#"kms_key_backend_up{backend="memory",store="vault-eu"}"#
        ),
        0.0
    );
    assert_eq!(
        value(
            &text,
            r#"kms_key_backend_up{backend="memory",store="vault-us"}"#
        ),
        1.0
    );
    let stores = |store: &str, status: &str| {
        value(
            &text,
            &format!(
                r#"kms_key_operations_total{{operation="store",backend="memory",store="{store}",status="{status}"}}"#
            ),
        )
    };
    assert_eq!(stores("vault-eu", "failure"), 1.0);
    assert_eq!(stores("vault-us", "success"), 1.0);
    assert_eq!(stores("vault-eu", "success"), 0.0);
    let report = metrics.health_report();
    assert_eq!(report.backends.len(), 2);
    assert_eq!(report.status, HealthStatus::Degraded);

    // Bounded and checked when configured.
    let bad = metrics.store_name("Vault EU {prod}").unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::Configuration);
    assert!(bad.to_string().contains("store_name"));
    assert!(
        metrics.store_name("vault-eu").is_ok(),
        "the same name again"
    );
    for i in 2..kms_metrics::MAX_STORE_NAMES {
        metrics.store_name(&format!("s{i}")).unwrap();
    }
    let over = metrics.store_name("one-too-many").unwrap_err();
    assert_eq!(over.kind(), ErrorKind::Configuration);
}

/// A retry is counted by operation and error kind and logged at DEBUG on `kms::retry`.
#[test]
fn retries_are_counted_and_logged() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let _store = StoreBuilder::new(MemoryStore::new())
        .layer(metrics.backend_monitor().probe_interval(None))
        .build();
    let series = r#"kms_key_backend_retries_total{operation="get",backend="memory",store="memory",kind="timeout"}"#;
    assert_eq!(value(&scrape(&registry), series), 0.0, "pre-created");
    metrics.record_retry(
        Operation::Get,
        "memory",
        None,
        ErrorKind::Timeout,
        1,
        Duration::from_millis(100),
    );
    assert_eq!(value(&scrape(&registry), series), 1.0);
    let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        out.contains("DEBUG") && out.contains("kms::retry") && out.contains("attempt=1"),
        "{out}"
    );
}

/// Wiring the breaker does not invent a `backend_up` sample either; its opening does
/// set 0.
#[tokio::test(start_paused = true)]
async fn the_breaker_hook_sets_backend_up_only_when_the_circuit_opens() {
    let metrics = KmsMetrics::register(&mut Registry::default());
    let backend = FaultStore::new(MemoryStore::new());
    let faults = backend.handle();
    let breaker = CircuitBreakerLayer::new();
    let store = StoreBuilder::new(backend)
        .layer(breaker.clone())
        .layer(
            metrics
                .backend_monitor()
                .circuit_breaker(&breaker.handle())
                .probe_interval(None),
        )
        .build();
    assert_eq!(metrics.backend_up("memory"), None);
    assert_eq!(metrics.circuit_state_gauge("memory"), Some(0));
    faults.fail_always(Operation::Get, ErrorKind::Unavailable);
    for _ in 0..10 {
        let _ = store.get_value("k").await;
    }
    assert_eq!(metrics.circuit_state_gauge("memory"), Some(1));
    assert_eq!(metrics.backend_up("memory"), Some(false));
    let report = metrics.health_report();
    assert_eq!(report.backends[0].circuit_state, Some("open"));
}

/// Retries made by the retry layer above the monitor are counted from the call context:
/// 2 failed attempts then a success is 2 retries of `unavailable`, one `DEBUG` event each;
/// the health probe and first attempts are not retries.
#[tokio::test(start_paused = true)]
async fn retries_made_by_the_retry_layer_above_the_monitor_are_counted() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let backend = FaultStore::new(MemoryStore::new());
    let faults = backend.handle();
    let store = StoreBuilder::new(backend)
        .layer(metrics.layer())
        .layer(RetryLayer::new())
        .layer(
            metrics
                .backend_monitor()
                .probe_interval(Some(Duration::from_secs(1))),
        )
        .layer(TimeoutLayer::new())
        .build();
    assert_eq!(
        store.to_string(),
        "Instrumented(Retry(Monitored(Timeout(Fault(Memory)))))"
    );
    store.put("k", "v").await.unwrap();
    faults.fail_next(Operation::Get, 2, ErrorKind::Unavailable);
    store.get_value("k").await.unwrap();
    store.get_value("k").await.unwrap(); // no retry
    tokio::time::sleep(Duration::from_secs(3)).await; // probes
    let text = scrape(&registry);
    assert_eq!(
        value(
            &text,
            r#"kms_key_backend_retries_total{operation="get",backend="memory",store="memory",kind="unavailable"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            r#"kms_key_backend_requests_total{operation="get",backend="memory",store="memory",status="failure"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            r#"kms_key_backend_requests_total{operation="get",backend="memory",store="memory",status="success"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            r#"kms_key_backend_retries_total{operation="store",backend="memory",store="memory",kind="unavailable"}"#
        ),
        0.0
    );
    let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let events: Vec<&str> = out.lines().filter(|l| l.contains("kms::retry")).collect();
    assert_eq!(events.len(), 2, "{out}");
    assert!(
        events[0].contains("attempt=1") && events[1].contains("attempt=2"),
        "{out}"
    );
}
