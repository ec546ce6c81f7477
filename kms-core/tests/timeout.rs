//! Timeout layer: deterministic tests with the fault store and tokio's paused time.

use std::time::Duration;

use kms_core::fault::FaultStore;
use kms_core::{
    ErrorKind, KeyStore, KeyStoreExt, MemoryStore, Operation, Retry, RetryLayer, Timeout,
    TimeoutLayer,
};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn a_hung_backend_times_out_at_the_deadline() {
    let faults = FaultStore::new(MemoryStore::new());
    let handle = faults.handle();
    let store = Timeout::new(faults, TimeoutLayer::new());
    handle.hang(Operation::Get);
    let started = Instant::now();
    let err = store.get_value("app/k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.is_retryable());
    assert_eq!(err.backend(), Some("memory"));
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    // Other operations are untouched.
    store.put("app/k", "v").await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn deadlines_are_per_operation() {
    let faults = FaultStore::new(MemoryStore::new());
    let handle = faults.handle();
    let store = Timeout::new(
        faults,
        TimeoutLayer::new().operation(Operation::Health, Duration::from_millis(200)),
    );
    handle.set_latency(Operation::Health, Duration::from_millis(300));
    handle.set_latency(Operation::Get, Duration::from_secs(4));
    let started = Instant::now();
    assert_eq!(store.health().await.unwrap_err().kind(), ErrorKind::Timeout);
    assert_eq!(started.elapsed(), Duration::from_millis(200));
    // 4 s is within get's 5 s deadline.
    assert!(
        store
            .get_value("app/missing")
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test(start_paused = true)]
async fn inside_retry_each_attempt_gets_its_own_deadline() {
    let faults = FaultStore::new(MemoryStore::new());
    let handle = faults.handle();
    let store = Retry::new(
        Timeout::new(faults, TimeoutLayer::all(Duration::from_secs(1))),
        RetryLayer::new().jitter(Duration::ZERO),
    );
    handle.hang(Operation::Get);
    let started = Instant::now();
    let err = store.get_value("app/k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.is_exhausted());
    assert_eq!(handle.calls(Operation::Get), 4);
    // 4 attempts of 1 s + backoff 100 + 200 + 400 ms.
    assert_eq!(started.elapsed(), Duration::from_millis(4700));
}

#[test]
fn display_and_debug() {
    let store = Timeout::new(MemoryStore::new(), TimeoutLayer::new());
    assert_eq!(store.to_string(), "Timeout(Memory)");
    assert_eq!(store.backend(), "memory");
    assert!(format!("{:?}", TimeoutLayer::new()).contains("5s"));
}

/// A zero deadline would fail every call at once: a configuration error naming the
/// operation, at build; a wrapper built from it anyway answers that error and calls nothing.
#[tokio::test(start_paused = true)]
async fn a_zero_deadline_is_a_configuration_error() {
    let layer = TimeoutLayer::new().operation(Operation::Store, Duration::ZERO);
    let err = kms_core::StoreBuilder::new(MemoryStore::new())
        .layer(layer)
        .try_build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(err.message().contains("`deadline(store)`"), "{err}");
    assert!(Timeout::try_new(MemoryStore::new(), layer).is_err());
    let faults = FaultStore::new(MemoryStore::new());
    let calls = faults.handle();
    let store = Timeout::new(faults, layer);
    let err = store.get_value("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(err.never_reached_backend());
    assert_eq!(calls.total_calls(), 0);
    TimeoutLayer::all(Duration::from_nanos(1))
        .validate()
        .unwrap();
}

#[test]
fn a_zero_value_limit_is_a_configuration_error() {
    let err = kms_core::ValidateLayer::new()
        .max_value_len(0)
        .validate()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(err.message().contains("`max_value_len`"), "{err}");
    kms_core::ValidateLayer::new()
        .max_value_len(1)
        .validate()
        .unwrap();
}
