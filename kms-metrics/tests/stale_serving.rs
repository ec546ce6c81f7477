//! An outage as the usual panels and the health endpoint see it, on the recommended stack
//! with the cache reading the backend monitor's health signal: stale reads counted as
//! `status="stale"` with their age, the outage detected by the first failed attempt (no
//! revalidation wait for later reads), the recovery seen within one fast probe. Tokio's paused
//! clock (exact elapsed times) and a mocked cache clock.

mod common;

use std::sync::Arc;
use std::time::Duration;

use kms_cache::CacheLayer;
use kms_cache::quanta::{Clock, Mock};
use kms_core::fault::{FaultHandle, FaultStore};
use kms_core::{
    CircuitBreakerLayer, ErrorKind, HealthSignal, KeyStore, KeyStoreExt, MemoryStore, Operation,
    RetryLayer, StoreBuilder, TimeoutLayer,
};
use kms_metrics::prometheus_client::registry::Registry;
use kms_metrics::{HealthStatus, KmsMetrics};
use tokio::time::Instant;

use common::{scrape, value};

const TTL: Duration = Duration::from_secs(60);

struct Stack {
    store: Arc<dyn KeyStore>,
    faults: FaultHandle,
    registry: Registry,
    metrics: KmsMetrics,
    signal: HealthSignal,
    time: Arc<Mock>,
}

/// metrics → cache (TTL 60 s on a mock clock, stale-if-error 15 min, reading the monitor's
/// signal) → breaker (reference settings: 10 calls before it may open) → retry (reference)
/// → monitor (probe every 15 s, every second while down) → timeout → faults → memory.
fn stack() -> Stack {
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let (clock, time) = Clock::mock();
    let backend = FaultStore::new(MemoryStore::new());
    let faults = backend.handle();
    let breaker = CircuitBreakerLayer::new();
    let monitor = metrics
        .backend_monitor()
        .circuit_breaker(&breaker.handle())
        .probe_interval(Some(Duration::from_secs(15)));
    let signal = monitor.health_signal();
    let store = StoreBuilder::new(backend)
        .layer(metrics.layer())
        .layer(
            CacheLayer::new()
                .ttl(TTL)
                .jitter(0.0)
                .stale_if_error(Duration::from_secs(900))
                .clock(clock)
                .observer(metrics.cache_observer("memory"))
                .health_signal(signal.clone()),
        )
        .layer(breaker)
        .layer(RetryLayer::new())
        .layer(monitor)
        .layer(TimeoutLayer::new())
        .build();
    Stack {
        store,
        faults,
        registry,
        metrics,
        signal,
        time,
    }
}

fn ops(text: &str, status: &str) -> f64 {
    value(
        text,
        &format!(
            r#"kms_key_operations_total{{operation="get",backend="memory",store="memory",status="{status}"}}"#
        ),
    )
}

fn stale_age(text: &str) -> f64 {
    value(
        text,
        r#"kms_key_cache_stale_age_seconds{backend="memory",store="memory"}"#,
    )
}

/// A sealed backend at one read every 5 s, for 60 s, then back. The stale reads are counted
/// as `stale` (not `success`), the age of what is served is exported (the gauge growing with
/// the outage, the histogram holding every serve) and returns to 0 once a load succeeds; the
/// first read pays the 100 ms stale-while-revalidate wait, every later one none; `/health` is
/// `ok` again within one fast probe of the recovery.
#[tokio::test(start_paused = true)]
async fn a_low_traffic_outage_is_seen_at_once_counted_stale_and_its_recovery_within_a_probe() {
    let s = stack();
    s.store.put("app/db", "s3cret-value").await.unwrap();
    s.store.get_value("app/db").await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(s.signal.is_up(), Some(true));
    let before = scrape(&s.registry);
    assert_eq!(ops(&before, "stale"), 0.0, "pre-created");
    assert_eq!(stale_age(&before), 0.0, "pre-created");

    // Sealed: every call unavailable. The cached entry expired 1 s ago.
    for op in Operation::ALL {
        s.faults.fail_always(op, ErrorKind::Unavailable);
    }
    s.time.increment(TTL + Duration::from_secs(1));
    let mut waits = Vec::new();
    for _ in 0..12 {
        let t = Instant::now();
        let v = s.store.get_value("app/db").await.unwrap();
        assert_eq!(v.expose_secret(), b"s3cret-value");
        waits.push(t.elapsed());
        tokio::time::sleep(Duration::from_secs(5)).await;
        s.time.increment(Duration::from_secs(5));
    }
    assert_eq!(waits[0], Duration::from_millis(100), "{waits:?}");
    assert!(
        waits[1..].iter().all(|w| w.is_zero()),
        "reads after the outage was seen waited: {waits:?}"
    );
    assert!(s.signal.is_down());
    let text = scrape(&s.registry);
    assert_eq!(ops(&text, "stale"), 12.0);
    assert_eq!(
        ops(&text, "success"),
        1.0,
        "only the read before the outage"
    );
    assert_eq!(ops(&text, "failure"), 0.0);
    // The last read served a value 1 + 11 × 5 = 56 s past its TTL.
    assert_eq!(stale_age(&text), 56.0);
    let histogram = |series: &str| {
        value(
            &text,
            &format!(
                r#"kms_key_cache_stale_serve_age_seconds_{series}{{backend="memory",store="memory"}}"#
            ),
        )
    };
    assert_eq!(histogram("count"), 12.0);
    assert_eq!(
        histogram("sum"),
        (0..12).map(|i| 1 + 5 * i).sum::<u64>() as f64
    );
    assert_eq!(s.metrics.health_report().status, HealthStatus::Degraded);

    // Back. The probe, every second while down, sees it within one: `/health` is `ok`
    // although the breaker has not closed (its trials wait for reads).
    s.faults.clear();
    let back = Instant::now();
    while s.metrics.health_report().status != HealthStatus::Ok {
        assert!(
            back.elapsed() <= Duration::from_secs(1),
            "{}",
            s.metrics.health_report().to_json()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.metrics.backend_up("memory"), Some(true));
    assert_eq!(s.signal.is_up(), Some(true));
    // Fresh values again: the next reads reload (through the breaker once its open delay is
    // over), and the stale age falls to 0.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut fresh = false;
    for _ in 0..10 {
        s.store.get_value("app/db").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        if stale_age(&scrape(&s.registry)) == 0.0 {
            fresh = true;
            break;
        }
    }
    assert!(fresh, "{}", scrape(&s.registry));
}

/// What the monitor writes into its signal: down on a failed probe, on an attempt that failed
/// as unhealthy and when the circuit opens; up on any answer (a not-found included).
#[tokio::test(start_paused = true)]
async fn the_monitor_writes_the_signal_from_probes_calls_and_the_breaker() {
    let metrics = KmsMetrics::register(&mut Registry::default());
    let backend = FaultStore::new(MemoryStore::new());
    let faults = backend.handle();
    // Opens when both calls of its window failed.
    let breaker = CircuitBreakerLayer::new()
        .min_calls(2)
        .window(2)
        .failure_ratio(1.0);
    let monitor = metrics
        .backend_monitor()
        .circuit_breaker(&breaker.handle())
        .probe_interval(None);
    let signal = monitor.health_signal();
    let store = StoreBuilder::new(backend)
        .layer(breaker.clone())
        .layer(monitor)
        .build();
    assert_eq!(signal.is_up(), None, "nothing known yet");
    assert_eq!(
        store.get_value("missing").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(signal.is_up(), Some(true), "a not-found is an answer");
    faults.fail_next(Operation::Get, 1, ErrorKind::Timeout);
    let _ = store.get_value("k").await;
    assert!(signal.is_down());
    let _ = store.get_value("missing").await;
    assert_eq!(signal.is_up(), Some(true));
    // The breaker opens on two failures in a row; calls it refuses never reach the monitor,
    // so they say nothing either way.
    faults.fail_always(Operation::Get, ErrorKind::Unavailable);
    let _ = store.get_value("k").await;
    let _ = store.get_value("k").await;
    assert_eq!(breaker.handle().state(), kms_core::CircuitState::Open);
    signal.mark_up(); // as if something else had written it
    let _ = store.get_value("k").await; // refused by the open circuit: not seen by the monitor
    assert_eq!(signal.is_up(), Some(true));
    faults.clear();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let _ = store.get_value("missing").await; // a trial, answered
    assert_eq!(signal.is_up(), Some(true));

    // The breaker opening marks it down on its own.
    let metrics = KmsMetrics::register(&mut Registry::default());
    let breaker = CircuitBreakerLayer::new().min_calls(1).window(1);
    let monitor = metrics
        .backend_monitor()
        .circuit_breaker(&breaker.handle())
        .probe_interval(None);
    let signal = monitor.health_signal();
    let faulty = FaultStore::new(MemoryStore::new());
    faulty
        .handle()
        .fail_always(Operation::Get, ErrorKind::Unavailable);
    // The breaker above a store the monitor does not wrap: only its hook can say down.
    let store = StoreBuilder::new(faulty).layer(breaker.clone()).build();
    let _monitored = StoreBuilder::new(MemoryStore::new()).layer(monitor).build();
    let _ = store.get_value("k").await;
    assert_eq!(breaker.handle().state(), kms_core::CircuitState::Open);
    assert!(signal.is_down());
}

/// Probing: every 15 s while up; a call that finds the backend down wakes the probe at once,
/// which then runs every second until the backend answers, and every 15 s again after.
#[tokio::test(start_paused = true)]
async fn the_probe_runs_fast_while_the_backend_is_down_and_a_failed_call_wakes_it() {
    let metrics = KmsMetrics::register(&mut Registry::default());
    let backend = FaultStore::new(MemoryStore::new());
    let faults = backend.handle();
    let monitor = metrics
        .backend_monitor()
        .probe_interval(Some(Duration::from_secs(15)));
    let signal = monitor.health_signal();
    let store = StoreBuilder::new(backend).layer(monitor).build();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        faults.calls(Operation::Health),
        1,
        "the first probe, at once"
    );
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(faults.calls(Operation::Health), 2, "every 15 s while up");

    faults.fail_always(Operation::Get, ErrorKind::Unavailable);
    faults.fail_always(Operation::Health, ErrorKind::Unavailable);
    let _ = store.get_value("k").await;
    assert!(signal.is_down());
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        faults.calls(Operation::Health),
        3,
        "woken by the failed call"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        faults.calls(Operation::Health),
        8,
        "every second while down"
    );

    faults.clear();
    let back = Instant::now();
    while signal.is_up() != Some(true) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        back.elapsed() <= Duration::from_secs(1),
        "{:?}",
        back.elapsed()
    );
    assert_eq!(metrics.backend_up("memory"), Some(true));
    let calls = faults.calls(Operation::Health);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(faults.calls(Operation::Health), calls, "15 s again once up");
}
