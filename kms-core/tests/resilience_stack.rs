//! The recommended stack `CircuitBreaker(Retry(Timeout(backend)))` working together.

use std::time::Duration;

use kms_core::fault::FaultStore;
use kms_core::{
    CircuitBreakerLayer, CircuitState, ErrorKind, KeyStoreExt, MemoryStore, Operation, RetryLayer,
    StoreBuilder, TimeoutLayer,
};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn a_hung_backend_is_retried_then_cut_off_by_the_breaker() {
    let faults = FaultStore::new(MemoryStore::new());
    let handle = faults.handle();
    let breaker = CircuitBreakerLayer::new();
    let circuit = breaker.handle();
    let store = StoreBuilder::new(faults)
        .resilience(
            breaker,
            RetryLayer::new().jitter(Duration::ZERO),
            TimeoutLayer::all(Duration::from_secs(1)),
        )
        .build();
    assert_eq!(
        store.to_string(),
        "CircuitBreaker(Retry(Timeout(Fault(Memory))))"
    );
    assert_eq!(store.backend(), "memory");

    handle.hang(Operation::Get);
    for call in 0..10 {
        assert_eq!(circuit.state(), CircuitState::Closed, "call {call}");
        let started = Instant::now();
        let err = store.get_value("app/k").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.is_exhausted());
        // Each logical call: 4 attempts of 1 s, backoff 100 + 200 + 400 ms.
        assert_eq!(started.elapsed(), Duration::from_millis(4700));
    }
    // One logical call counts once: 10 calls (40 attempts) reached min_calls, ratio 1.0.
    assert_eq!(handle.calls(Operation::Get), 40);
    assert_eq!(circuit.state(), CircuitState::Open);

    // Open: fails at once, no attempt, no backoff sleep.
    let started = Instant::now();
    let err = store.get_value("app/k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(handle.calls(Operation::Get), 40);

    // The backend recovers; after the open delay three trials close the circuit.
    handle.clear();
    store.put("app/k", "v").await.unwrap_err(); // still open: writes are refused too
    tokio::time::advance(Duration::from_secs(5)).await;
    store.put("app/k", "v").await.unwrap();
    assert_eq!(circuit.state(), CircuitState::HalfOpen);
    store.get_value("app/k").await.unwrap();
    store.get_value("app/k").await.unwrap();
    assert_eq!(circuit.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn transient_blips_are_absorbed_without_opening() {
    let faults = FaultStore::new(MemoryStore::new());
    let handle = faults.handle();
    let breaker = CircuitBreakerLayer::new();
    let circuit = breaker.handle();
    let store = StoreBuilder::new(faults)
        .resilience(breaker, RetryLayer::new(), TimeoutLayer::new())
        .build();
    store.put("app/k", "v").await.unwrap();
    for _ in 0..30 {
        // Every call fails twice, then succeeds: retry absorbs it; the breaker sees success.
        handle.fail_next(Operation::Get, 2, ErrorKind::RateLimited);
        store.get_value("app/k").await.unwrap();
    }
    assert_eq!(circuit.state(), CircuitState::Closed);
    assert_eq!(circuit.window_failures(), 0);
    assert_eq!(handle.calls(Operation::Get), 90);
}
