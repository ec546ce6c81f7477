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

/// A call polled outside any Tokio runtime that does not answer on its first poll: the
/// timeout layer has no timer to arm, so the call runs to its end (unbounded, as documented)
/// instead of panicking with "there is no reactor running".
#[test]
fn without_a_runtime_a_pending_call_runs_to_its_end() {
    struct Pending1(bool);
    impl std::future::Future for Pending1 {
        type Output = ();
        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<()> {
            if self.0 {
                return std::task::Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }
    #[derive(Debug)]
    struct Slow(kms_core::MemoryStore);
    impl std::fmt::Display for Slow {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Slow")
        }
    }
    #[kms_core::async_trait]
    impl kms_core::KeyStore for Slow {
        fn backend(&self) -> &'static str {
            "memory"
        }
        fn capabilities(&self) -> kms_core::Capabilities {
            self.0.capabilities()
        }
        async fn get(&self, key: &kms_core::KeyName) -> kms_core::Result<kms_core::StoredSecret> {
            Pending1(false).await;
            self.0.get(key).await
        }
        async fn store(
            &self,
            key: &kms_core::KeyName,
            value: kms_core::SecretValue,
        ) -> kms_core::Result<kms_core::SecretMeta> {
            Pending1(false).await;
            self.0.store(key, value).await
        }
        async fn remove(&self, key: &kms_core::KeyName) -> kms_core::Result<()> {
            self.0.remove(key).await
        }
        async fn list(&self, p: &kms_core::KeyPrefix) -> kms_core::Result<Vec<kms_core::KeyName>> {
            self.0.list(p).await
        }
        async fn health(&self) -> kms_core::Result<()> {
            Ok(())
        }
    }
    use kms_core::KeyStoreExt;
    let store = kms_core::StoreBuilder::new(Slow(kms_core::MemoryStore::new()))
        .layer(kms_core::TimeoutLayer::all(Duration::from_millis(100)))
        .build();
    block_on(async {
        store.put("k", "v").await.unwrap();
        assert_eq!(
            store.get_value("k").await.unwrap().expose_str().unwrap(),
            "v"
        );
    });
}

/// Runs `fut` to its end on this thread, outside any Tokio runtime (what
/// `futures::executor::block_on` does).
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let std::task::Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}
