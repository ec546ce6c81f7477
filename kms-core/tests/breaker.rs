//! Circuit breaker: deterministic tests with the fault store and tokio's paused time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kms_core::fault::{FaultHandle, FaultStore};
use kms_core::{
    CircuitBreaker, CircuitBreakerLayer, CircuitState, ErrorKind, KeyStore, KeyStoreExt,
    MemoryStore, Operation,
};

fn breaker(layer: &CircuitBreakerLayer) -> (CircuitBreaker<FaultStore<MemoryStore>>, FaultHandle) {
    let faults = FaultStore::new(MemoryStore::new());
    let handle = faults.handle();
    (CircuitBreaker::new(faults, layer), handle)
}

fn recording(layer: CircuitBreakerLayer) -> (CircuitBreakerLayer, Arc<Mutex<Vec<CircuitState>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let layer = layer.on_state_change(move |s| sink.lock().unwrap().push(s));
    (layer, seen)
}

/// Drives the default breaker open: 5 successes then 5 unavailable = 10 calls at ratio 0.5.
async fn open_it(store: &CircuitBreaker<FaultStore<MemoryStore>>, faults: &FaultHandle) {
    store.put("app/k", "v").await.unwrap();
    for _ in 0..4 {
        store.get_value("app/k").await.unwrap();
    }
    faults.fail_next(Operation::Get, 5, ErrorKind::Unavailable);
    for _ in 0..5 {
        assert_eq!(
            store.get_value("app/k").await.unwrap_err().kind(),
            ErrorKind::Unavailable
        );
    }
}

#[tokio::test(start_paused = true)]
async fn opens_at_the_ratio_and_rejects_without_calling_the_backend() {
    let (layer, seen) = recording(CircuitBreakerLayer::new());
    let handle = layer.handle();
    let (store, faults) = breaker(&layer);

    store.put("app/k", "v").await.unwrap();
    for _ in 0..4 {
        store.get_value("app/k").await.unwrap();
    }
    faults.fail_next(Operation::Get, 5, ErrorKind::Unavailable);
    for i in 0..5 {
        assert_eq!(handle.state(), CircuitState::Closed, "before failure {i}");
        store.get_value("app/k").await.unwrap_err();
    }
    assert_eq!(handle.state(), CircuitState::Open);
    assert_eq!(*seen.lock().unwrap(), [CircuitState::Open]);

    let before = faults.total_calls();
    for _ in 0..50 {
        let err = store.get_value("app/k").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CircuitOpen);
        assert!(!err.is_retryable());
        assert_eq!(err.backend(), Some("memory"));
    }
    assert_eq!(
        store.health().await.unwrap_err().kind(),
        ErrorKind::CircuitOpen
    );
    assert_eq!(
        faults.total_calls(),
        before,
        "open circuit must not call the backend"
    );
}

#[tokio::test(start_paused = true)]
async fn does_not_open_below_the_ratio_or_the_minimum() {
    let layer = CircuitBreakerLayer::new();
    let (store, faults) = breaker(&layer);
    // 9 failures: below min_calls (10).
    faults.fail_next(Operation::Health, 9, ErrorKind::Timeout);
    for _ in 0..9 {
        store.health().await.unwrap_err();
    }
    assert_eq!(layer.handle().state(), CircuitState::Closed);
    // Then 11 successes: window of 20 holds 9 failures, ratio 0.45.
    for _ in 0..11 {
        store.health().await.unwrap();
    }
    faults.fail_next(Operation::Health, 1, ErrorKind::Timeout);
    store.health().await.unwrap_err(); // evicts a failure, adds one: still 9/20
    assert_eq!(layer.handle().state(), CircuitState::Closed);
    assert_eq!(layer.handle().window_failures(), 9);
}

#[tokio::test(start_paused = true)]
async fn half_opens_after_the_delay_and_closes_after_the_successes() {
    let (layer, seen) = recording(CircuitBreakerLayer::new());
    let handle = layer.handle();
    let (store, faults) = breaker(&layer);
    open_it(&store, &faults).await;
    assert_eq!(handle.state(), CircuitState::Open);

    tokio::time::advance(Duration::from_millis(4999)).await;
    assert_eq!(
        store.get_value("app/k").await.unwrap_err().kind(),
        ErrorKind::CircuitOpen
    );
    tokio::time::advance(Duration::from_millis(1)).await;

    let before = faults.calls(Operation::Get);
    store.get_value("app/k").await.unwrap();
    assert_eq!(handle.state(), CircuitState::HalfOpen);
    store.get_value("app/k").await.unwrap();
    assert_eq!(handle.state(), CircuitState::HalfOpen);
    store.get_value("app/k").await.unwrap();
    assert_eq!(handle.state(), CircuitState::Closed);
    assert_eq!(faults.calls(Operation::Get), before + 3);
    assert_eq!(handle.window_failures(), 0, "closing starts a fresh window");
    assert_eq!(
        *seen.lock().unwrap(),
        [
            CircuitState::Open,
            CircuitState::HalfOpen,
            CircuitState::Closed
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_half_open_failure_reopens_it() {
    let (layer, seen) = recording(CircuitBreakerLayer::new());
    let handle = layer.handle();
    let (store, faults) = breaker(&layer);
    open_it(&store, &faults).await;
    tokio::time::advance(Duration::from_secs(5)).await;

    store.get_value("app/k").await.unwrap();
    faults.fail_next(Operation::Get, 1, ErrorKind::RateLimited);
    store.get_value("app/k").await.unwrap_err();
    assert_eq!(handle.state(), CircuitState::Open);
    assert_eq!(
        store.get_value("app/k").await.unwrap_err().kind(),
        ErrorKind::CircuitOpen
    );
    assert_eq!(
        *seen.lock().unwrap(),
        [
            CircuitState::Open,
            CircuitState::HalfOpen,
            CircuitState::Open
        ]
    );
    // A full delay again before the next trial.
    tokio::time::advance(Duration::from_secs(5)).await;
    store.get_value("app/k").await.unwrap();
    assert_eq!(handle.state(), CircuitState::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn half_open_limits_concurrent_trials() {
    let layer = CircuitBreakerLayer::new().half_open_calls(1);
    let handle = layer.handle();
    let (store, faults) = breaker(&layer);
    open_it(&store, &faults).await;
    tokio::time::advance(Duration::from_secs(5)).await;

    faults.set_latency(Operation::Get, Duration::from_secs(1));
    let store = Arc::new(store);
    let trial = tokio::spawn({
        let store = store.clone();
        async move { store.get_value("app/k").await.map(|_| ()) }
    });
    tokio::task::yield_now().await;
    assert_eq!(handle.state(), CircuitState::HalfOpen);
    let err = store.get_value("app/k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    trial.await.unwrap().unwrap();

    // A dropped trial gives its permit back.
    let dropped = tokio::time::timeout(Duration::from_millis(10), store.get_value("app/k")).await;
    assert!(dropped.is_err());
    faults.clear();
    store.get_value("app/k").await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn not_found_and_permission_storms_never_open_it() {
    let layer = CircuitBreakerLayer::new();
    let (store, faults) = breaker(&layer);
    for i in 0..100 {
        let err = store
            .get_value(&format!("app/missing-{i}"))
            .await
            .unwrap_err();
        assert!(err.is_not_found());
    }
    faults.fail_next(Operation::List, 50, ErrorKind::PermissionDenied);
    for _ in 0..50 {
        store.list_sorted("app/").await.unwrap_err();
    }
    assert_eq!(layer.handle().state(), CircuitState::Closed);
    assert_eq!(layer.handle().window_failures(), 0);
}

#[tokio::test(start_paused = true)]
async fn stores_wrapped_by_one_layer_share_the_breaker() {
    let layer = CircuitBreakerLayer::new().min_calls(2).window(2);
    let (a, faults_a) = breaker(&layer);
    let (b, _) = breaker(&layer);
    faults_a.fail_next(Operation::Health, 2, ErrorKind::Unavailable);
    a.health().await.unwrap_err();
    a.health().await.unwrap_err();
    assert_eq!(b.handle().state(), CircuitState::Open);
    assert_eq!(b.health().await.unwrap_err().kind(), ErrorKind::CircuitOpen);
}

#[test]
fn display_debug_and_gauge() {
    let layer = CircuitBreakerLayer::new();
    let store = CircuitBreaker::new(MemoryStore::new(), &layer);
    assert_eq!(store.to_string(), "CircuitBreaker(Memory)");
    assert_eq!(store.backend(), "memory");
    let debug = format!("{layer:?}");
    assert!(
        debug.contains("min_calls: 10") && debug.contains("Closed"),
        "{debug}"
    );
    assert_eq!(layer.handle().state().as_gauge(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_contention_the_last_hook_call_carries_the_current_state() {
    let last = Arc::new(Mutex::new(CircuitState::Closed));
    let calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let layer = CircuitBreakerLayer::new()
        .window(8)
        .min_calls(4)
        .open_delay(Duration::ZERO)
        .success_threshold(2)
        .on_state_change({
            let last = last.clone();
            let calls = calls.clone();
            move |s| {
                *last.lock().unwrap() = s;
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
    let (store, faults) = breaker(&layer);
    store.put("app/k", "v").await.unwrap();
    faults.fail_always(Operation::Health, ErrorKind::Unavailable);
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..500 {
                    if (i + t) % 2 == 0 {
                        let _ = store.health().await;
                    } else {
                        let _ = store.get_value("app/k").await;
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert!(
        calls.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "half the calls fail: the breaker must have moved"
    );
    assert_eq!(*last.lock().unwrap(), layer.handle().state());
}
