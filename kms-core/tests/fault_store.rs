//! The fault injector does what tests of other layers rely on.

use std::time::Duration;

use kms_core::fault::FaultStore;
use kms_core::{ErrorKind, KeyName, KeyStore, KeyStoreExt, MemoryStore, Operation};

#[tokio::test]
async fn fails_exactly_the_next_n_calls_of_one_operation() {
    let store = FaultStore::new(MemoryStore::new());
    let faults = store.handle();
    store.put("k", "v").await.unwrap();
    faults.fail_next(Operation::Get, 2, ErrorKind::Unavailable);
    for _ in 0..2 {
        let err = store.get_value("k").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(err.backend(), Some("memory"));
    }
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "v"
    );
    // Other operations were never affected.
    store.put("k2", "v").await.unwrap();
    assert_eq!(faults.calls(Operation::Get), 3);
    assert_eq!(faults.calls(Operation::Store), 2);
}

#[tokio::test]
async fn fail_always_until_cleared() {
    let store = FaultStore::new(MemoryStore::new());
    let faults = store.handle();
    faults.fail_always(Operation::Health, ErrorKind::Timeout);
    for _ in 0..5 {
        assert_eq!(store.health().await.unwrap_err().kind(), ErrorKind::Timeout);
    }
    faults.clear();
    store.health().await.unwrap();
    faults.fail_next_any(1, ErrorKind::RateLimited);
    assert_eq!(
        store.delete("x").await.unwrap_err().kind(),
        ErrorKind::RateLimited
    );
    assert_eq!(
        store.delete("x").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test(start_paused = true)]
async fn latency_and_hang_use_tokio_time() {
    let store = FaultStore::new(MemoryStore::new());
    let faults = store.handle();
    faults.set_latency(Operation::Get, Duration::from_secs(2));
    let key = KeyName::new("k").unwrap();
    let start = tokio::time::Instant::now();
    assert!(store.get(&key).await.unwrap_err().is_not_found());
    assert_eq!(start.elapsed(), Duration::from_secs(2));

    faults.hang(Operation::Get);
    let hung = tokio::time::timeout(Duration::from_secs(3600), store.get(&key)).await;
    assert!(hung.is_err(), "a hung call never completes");
    assert_eq!(faults.calls(Operation::Get), 2);
}
