//! Whole stacks, built the way a service builds them, over a fault-injecting backend.

use std::sync::Arc;
use std::time::Duration;

use kms_core::envelope::EnvelopeLayer;
use kms_core::fault::FaultStore;
use kms_core::{
    CircuitBreakerLayer, CircuitState, ErrorKind, KeyStoreExt, LocalKeyProvider, MemoryStore,
    Operation, RetryLayer, StoreBuilder, TimeoutLayer, ValidateLayer,
};

fn stack(
    backend: FaultStore<MemoryStore>,
    breaker: CircuitBreakerLayer,
) -> Arc<dyn kms_core::KeyStore> {
    StoreBuilder::new(backend)
        .layer(ValidateLayer::new().max_value_len(16 * 1024))
        .resilience(breaker, RetryLayer::new(), TimeoutLayer::new())
        .layer(EnvelopeLayer::new(Arc::new(LocalKeyProvider::generate())))
        .build()
}

mod conformance_full_stack {
    use super::*;
    kms_core::conformance_tests!(stack(
        FaultStore::new(MemoryStore::new()),
        CircuitBreakerLayer::new()
    ));
}

#[tokio::test]
async fn display_names_the_whole_stack_in_order() {
    let store = stack(
        FaultStore::new(MemoryStore::new()),
        CircuitBreakerLayer::new(),
    );
    assert_eq!(
        store.to_string(),
        "Validate(CircuitBreaker(Retry(Timeout(Envelope(local, Fault(Memory))))))"
    );
    assert_eq!(store.backend(), "memory");
}

/// A backend outage: each call is retried, the breaker opens, calls fail fast without touching
/// the backend, and the stack recovers by itself once the backend is back.
#[tokio::test(start_paused = true)]
async fn an_outage_opens_the_breaker_and_the_stack_recovers() {
    let backend = FaultStore::new(MemoryStore::new());
    let faults = backend.handle();
    let breaker = CircuitBreakerLayer::new();
    let state = breaker.handle();
    let store = stack(backend, breaker);
    store.put("db/password", "s3cret").await.unwrap();

    faults.fail_always(Operation::Get, ErrorKind::Unavailable);
    // The window's minimum is 10 calls: the successful put plus 9 failed gets.
    for _ in 0..9 {
        let err = store.get_value("db/password").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.is_exhausted(), "the retry layer gave up: {err}");
    }
    assert_eq!(state.state(), CircuitState::Open);
    assert_eq!(
        faults.calls(Operation::Get),
        36,
        "9 calls x (1 attempt + 3 retries)"
    );

    let err = store.get_value("db/password").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert_eq!(
        faults.calls(Operation::Get),
        36,
        "an open circuit does not call the backend"
    );

    faults.clear();
    tokio::time::advance(Duration::from_secs(5)).await;
    for _ in 0..3 {
        assert_eq!(
            store
                .get_value("db/password")
                .await
                .unwrap()
                .expose_str()
                .unwrap(),
            "s3cret"
        );
    }
    assert_eq!(state.state(), CircuitState::Closed);
}

/// Not-found and invalid input are answers, not outages: no retry, no breaker.
#[tokio::test(start_paused = true)]
async fn permanent_errors_are_neither_retried_nor_counted() {
    let backend = FaultStore::new(MemoryStore::new());
    let faults = backend.handle();
    let breaker = CircuitBreakerLayer::new();
    let state = breaker.handle();
    let store = stack(backend, breaker);
    for _ in 0..50 {
        assert!(store.get_value("missing").await.unwrap_err().is_not_found());
    }
    assert_eq!(faults.calls(Operation::Get), 50);
    assert_eq!(state.state(), CircuitState::Closed);
    let err = store.put("big", vec![0u8; 20_000]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(faults.calls(Operation::Store), 0);
}
