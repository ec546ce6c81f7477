//! Bad names and oversized values fail with the typed error and never reach the backend; the
//! counting `FaultStore` proves it.

use kms_core::fault::FaultStore;
use kms_core::{
    ErrorKind, KeyName, KeyStoreExt, MemoryStore, Operation, StoreBuilder, ValidateLayer,
};

#[tokio::test]
async fn invalid_names_never_reach_the_backend() {
    let backend = FaultStore::new(MemoryStore::new());
    let calls = backend.handle();
    let store = StoreBuilder::new(backend)
        .layer(ValidateLayer::new())
        .build();

    for bad in [
        "../../sys/policy/root",
        "",
        "a//b",
        "/etc/passwd",
        "x\0y",
        "a/./b",
    ] {
        assert_eq!(
            store.put(bad, "v").await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            store.get_value(bad).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            store.delete(bad).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            store
                .list_sorted(bad)
                .await
                .map(|_| ())
                .err()
                .map(|e| e.kind()),
            match bad {
                // The empty prefix is valid: it lists everything.
                "" => None,
                _ => Some(ErrorKind::InvalidInput),
            }
        );
    }
    assert_eq!(calls.total_calls() - calls.calls(Operation::List), 0);
    assert_eq!(
        calls.calls(Operation::List),
        1,
        "only the valid empty prefix was listed"
    );

    // A good name does reach it: the counter is live.
    store.put("ok", "v").await.unwrap();
    assert_eq!(calls.calls(Operation::Store), 1);
}

#[tokio::test]
async fn oversized_values_never_reach_the_backend() {
    let backend = FaultStore::new(MemoryStore::new());
    let calls = backend.handle();
    let store = StoreBuilder::new(backend)
        .layer(ValidateLayer::new().max_value_len(1024))
        .build();
    let key = KeyName::new("big").unwrap();

    let err = store.store(&key, vec![7u8; 1025].into()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains("1025 bytes, the maximum is 1024"),
        "{err}"
    );
    assert_eq!(calls.calls(Operation::Store), 0);

    store.store(&key, vec![7u8; 1024].into()).await.unwrap();
    assert_eq!(calls.calls(Operation::Store), 1);
}

#[tokio::test]
async fn display_names_the_stack() {
    let store = StoreBuilder::new(FaultStore::new(MemoryStore::new()))
        .layer(ValidateLayer::new())
        .build();
    assert_eq!(store.to_string(), "Validate(Fault(Memory))");
    assert_eq!(store.backend(), "memory");
}
