//! Outages: a hung, refusing or forgetful backend never reaches callers while a good value is
//! cached. The full stack in process (cache → breaker → retry → timeout → fault store), on
//! tokio's paused clock and a mocked cache clock.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kms_cache::CacheLayer;
use kms_cache::quanta::{Clock, Mock};
use kms_core::fault::{FaultHandle, FaultStore};
use kms_core::{
    CircuitBreakerHandle, CircuitBreakerLayer, CircuitState, ErrorKind, KeyStore, KeyStoreExt,
    MemoryStore, Operation, RetryLayer, StoreBuilder, TimeoutLayer,
};
use tokio::time::Instant;

const TTL: Duration = Duration::from_secs(60);
const ATTEMPT: Duration = Duration::from_millis(500);

struct Stack {
    store: Arc<dyn KeyStore>,
    backend: Arc<MemoryStore>,
    faults: FaultHandle,
    breaker: CircuitBreakerHandle,
    time: Arc<Mock>,
}

/// cache (stale-if-error 15 min, stale wait 100 ms) → breaker → retry → timeout 500 ms →
/// faults → memory, with `keys` cached and then expired.
async fn stack(keys: &[&str]) -> Stack {
    let (clock, time): (Clock, Arc<Mock>) = Clock::mock();
    let backend = Arc::new(MemoryStore::new());
    let faulty = FaultStore::new(backend.clone());
    let faults = faulty.handle();
    let breaker = CircuitBreakerLayer::new().min_calls(4).window(8);
    let handle = breaker.handle();
    let store = StoreBuilder::new(faulty)
        .layer(
            CacheLayer::new()
                .ttl(TTL)
                .jitter(0.0)
                .stale_if_error(Duration::from_secs(900))
                .clock(clock),
        )
        .resilience(breaker, RetryLayer::new(), TimeoutLayer::all(ATTEMPT))
        .try_build()
        .unwrap();
    for k in keys {
        store
            .put(k, format!("value of {k}").as_str())
            .await
            .unwrap();
        store.get_value(k).await.unwrap();
    }
    time.increment(TTL + Duration::from_secs(1));
    Stack {
        store,
        backend,
        faults,
        breaker: handle,
        time,
    }
}

/// Scenario 1: a hung backend, readers with a 2 s deadline of their own. Every read is served
/// stale within about the stale wait, and the breaker opens after a few attempt timeouts,
/// whatever the callers' deadlines.
#[tokio::test(start_paused = true)]
async fn a_hung_backend_is_served_stale_and_opens_the_breaker() {
    let keys: Vec<String> = (0..8).map(|i| format!("app/k{i}")).collect();
    let names: Vec<&str> = keys.iter().map(String::as_str).collect();
    let s = stack(&names).await;
    s.faults.hang(Operation::Get);
    let started = Instant::now();
    let mut opened_at = None;
    let mut errors = 0;
    for _round in 0..40 {
        let reads = join_all(names.iter().map(|k| async {
            let t = Instant::now();
            let r = tokio::time::timeout(Duration::from_secs(2), s.store.get_value(k)).await;
            (t.elapsed(), r)
        }))
        .await;
        for (elapsed, r) in reads {
            match r {
                Ok(Ok(v)) => {
                    assert!(v.expose_str().unwrap().starts_with("value of"));
                    assert!(elapsed <= Duration::from_millis(100), "{elapsed:?}");
                }
                _ => errors += 1,
            }
        }
        if opened_at.is_none() && s.breaker.state() == CircuitState::Open {
            opened_at = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(errors, 0, "caller errors while a stale value exists");
    let opened_at = opened_at.unwrap_or_else(|| {
        panic!(
            "the breaker never opened: {:?}, {} window failures, {} gets",
            s.breaker.state(),
            s.breaker.window_failures(),
            s.faults.calls(Operation::Get)
        )
    });
    // One load per key: 4 attempts of 500 ms and the retry backoff between them (at most
    // 100 + 200 + 400 ms, plus 50 ms of jitter each), checked every 100 ms.
    assert!(
        opened_at <= ATTEMPT * 4 + Duration::from_millis(1000),
        "{opened_at:?}"
    );
}

/// Scenario 3: a write refused before it could reach the backend (the breaker is open) leaves
/// the cache as it was: the key is still served stale like every untouched key.
#[tokio::test(start_paused = true)]
async fn a_write_refused_by_the_breaker_keeps_the_stale_value() {
    let s = stack(&["app/a", "app/b"]).await;
    s.faults.fail_always(Operation::Get, ErrorKind::Unavailable);
    // A validation refusal (here the backend's own size check) changes nothing either.
    let big = vec![0u8; s.store.capabilities().max_value_len + 1];
    let err = s.store.put("app/b", big).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        s.store
            .get_value("app/b")
            .await
            .unwrap()
            .expose_str()
            .unwrap(),
        "value of app/b"
    );
    s.faults
        .fail_always(Operation::Store, ErrorKind::Unavailable);
    // Drive the breaker open with loads that fail (served stale meanwhile).
    while s.breaker.state() != CircuitState::Open {
        s.store.get_value("app/a").await.unwrap();
        s.time.increment(Duration::from_millis(1));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let calls = s.faults.calls(Operation::Store);
    let err = s.store.put("app/a", "new").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert!(err.never_reached_backend());
    assert_eq!(s.faults.calls(Operation::Store), calls);
    assert_eq!(
        s.store
            .get_value("app/a")
            .await
            .unwrap()
            .expose_str()
            .unwrap(),
        "value of app/a"
    );
}

/// A write that may have reached the backend (it failed with a timeout) does invalidate.
#[tokio::test(start_paused = true)]
async fn a_write_that_may_have_landed_drops_the_stale_value() {
    let s = stack(&["app/a"]).await;
    s.faults.fail_next(Operation::Store, 4, ErrorKind::Timeout);
    let err = s.store.put("app/a", "new").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    s.faults.fail_always(Operation::Get, ErrorKind::Unavailable);
    assert_eq!(
        s.store.get_value("app/a").await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
}

/// Scenario 4: once the backend has said not-found (or permission denied) for a key, its
/// stale value is gone: a later outage does not resurrect it.
#[tokio::test(start_paused = true)]
async fn not_found_from_the_backend_drops_the_stale_value() {
    let s = stack(&["app/r", "app/p"]).await;
    s.backend.delete("app/r").await.unwrap();
    assert_eq!(
        s.store.get_value("app/r").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    s.faults
        .fail_next(Operation::Get, 1, ErrorKind::PermissionDenied);
    assert_eq!(
        s.store.get_value("app/p").await.unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
    s.faults.fail_always(Operation::Get, ErrorKind::Unavailable);
    for k in ["app/r", "app/p"] {
        let err = s.store.get_value(k).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{k} resurrected");
    }
}

/// Scenario 5: stale-while-revalidate. With the breaker closed and a backend that takes 5 s,
/// a stale value is served after the 100 ms stale wait, while the reload carries on and
/// caches the fresh value when it ends.
#[tokio::test(start_paused = true)]
async fn a_slow_reload_serves_stale_after_the_stale_wait() {
    let s = stack(&["app/k"]).await;
    s.backend.put("app/k", "fresh").await.unwrap();
    s.faults
        .set_latency(Operation::Get, Duration::from_millis(400));
    let t = Instant::now();
    let v = s.store.get_value("app/k").await.unwrap();
    assert_eq!(v.expose_str().unwrap(), "value of app/k");
    assert_eq!(t.elapsed(), Duration::from_millis(100));
    tokio::time::sleep(Duration::from_millis(400)).await;
    s.faults.clear();
    let calls = s.faults.calls(Operation::Get);
    assert_eq!(
        s.store
            .get_value("app/k")
            .await
            .unwrap()
            .expose_str()
            .unwrap(),
        "fresh"
    );
    assert_eq!(
        s.faults.calls(Operation::Get),
        calls,
        "the reload was not cached"
    );
}

/// A load's outcome does not depend on its first caller: a `get` dropped by its caller's
/// deadline still caches the value its load brings back.
#[tokio::test(start_paused = true)]
async fn a_load_outlives_the_caller_that_started_it() {
    let s = stack(&[]).await;
    s.backend.put("app/k", "v").await.unwrap();
    s.faults
        .set_latency(Operation::Get, Duration::from_millis(300));
    let r = tokio::time::timeout(Duration::from_millis(10), s.store.get_value("app/k")).await;
    assert!(r.is_err());
    tokio::time::sleep(Duration::from_millis(400)).await;
    s.faults.clear();
    let calls = s.faults.calls(Operation::Get);
    assert_eq!(
        s.store
            .get_value("app/k")
            .await
            .unwrap()
            .expose_str()
            .unwrap(),
        "v"
    );
    assert_eq!(s.faults.calls(Operation::Get), calls);
}
