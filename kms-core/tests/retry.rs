//! Retry layer: deterministic tests with the fault store and tokio's paused time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kms_core::fault::FaultStore;
use kms_core::{
    ErrorKind, KeyName, KeyPrefix, KeyStore, KeyStoreExt, MemoryStore, Operation, Retry,
    RetryLayer, SecretMeta, SecretValue, StoredSecret,
};
use tokio::time::Instant;

fn retry_over_faults(
    layer: RetryLayer,
) -> (Retry<FaultStore<MemoryStore>>, kms_core::fault::FaultHandle) {
    let faults = FaultStore::new(MemoryStore::new());
    let handle = faults.handle();
    (Retry::new(faults, layer), handle)
}

#[tokio::test(start_paused = true)]
async fn succeeds_on_the_third_attempt_after_two_unavailable() {
    let (store, faults) = retry_over_faults(RetryLayer::new());
    store.put("app/k", "v").await.unwrap();
    faults.reset_calls();
    faults.fail_next(Operation::Get, 2, ErrorKind::Unavailable);
    let got = store.get_value("app/k").await.unwrap();
    assert_eq!(got.expose_secret(), b"v");
    assert_eq!(faults.calls(Operation::Get), 3);
}

#[tokio::test(start_paused = true)]
async fn does_not_retry_not_found_or_permission() {
    let (store, faults) = retry_over_faults(RetryLayer::new());
    let err = store.get_value("app/missing").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(!err.is_exhausted());
    assert_eq!(faults.calls(Operation::Get), 1);

    faults.fail_next(Operation::List, 5, ErrorKind::PermissionDenied);
    let err = store
        .list(&KeyPrefix::new("app/").unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert_eq!(faults.calls(Operation::List), 1);
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_the_limit_with_the_last_error_exhausted() {
    let (store, faults) = retry_over_faults(RetryLayer::new());
    faults.fail_next(Operation::Health, 3, ErrorKind::Unavailable);
    faults.fail_next(Operation::Health, 1, ErrorKind::RateLimited);
    let err = store.health().await.unwrap_err();
    // 1 attempt + 3 retries; the 4th error (rate limited) is the last one.
    assert_eq!(faults.calls(Operation::Health), 4);
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert!(err.is_exhausted());
    assert!(!err.is_retryable());

    // An outer retry does not multiply the attempts.
    let (inner, faults) = retry_over_faults(RetryLayer::new().max_retries(2));
    let outer = Retry::new(inner, RetryLayer::new().max_retries(2));
    faults.fail_always(Operation::Health, ErrorKind::Timeout);
    let err = outer.health().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(faults.calls(Operation::Health), 3);
}

/// Records the (paused) time of every call that reaches it.
#[derive(Debug)]
struct Clocked<S> {
    inner: S,
    times: Arc<Mutex<Vec<Instant>>>,
}

impl<S: KeyStore> std::fmt::Display for Clocked<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clocked({})", self.inner)
    }
}

#[kms_core::async_trait]
impl<S: KeyStore> KeyStore for Clocked<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn capabilities(&self) -> kms_core::Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &KeyName) -> kms_core::Result<StoredSecret> {
        self.times.lock().unwrap().push(Instant::now());
        self.inner.get(key).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> kms_core::Result<SecretMeta> {
        self.inner.store(key, value).await
    }
    async fn remove(&self, key: &KeyName) -> kms_core::Result<()> {
        self.inner.remove(key).await
    }
    async fn list(&self, prefix: &KeyPrefix) -> kms_core::Result<Vec<KeyName>> {
        self.inner.list(prefix).await
    }
    async fn health(&self) -> kms_core::Result<()> {
        self.inner.health().await
    }
}

#[tokio::test(start_paused = true)]
async fn backoff_delays_fall_inside_the_jitter_band() {
    for _ in 0..20 {
        let faults = FaultStore::new(MemoryStore::new());
        let handle = faults.handle();
        let times = Arc::new(Mutex::new(Vec::new()));
        let store = Retry::new(
            Clocked {
                inner: faults,
                times: times.clone(),
            },
            RetryLayer::new(),
        );
        handle.fail_always(Operation::Get, ErrorKind::Unavailable);
        let err = store.get_value("app/k").await.unwrap_err();
        assert!(err.is_exhausted());
        let times = times.lock().unwrap();
        assert_eq!(times.len(), 4);
        for (n, pair) in times.windows(2).enumerate() {
            let gap = pair[1] - pair[0];
            let low = Duration::from_millis(100 << n);
            let high = low + Duration::from_millis(50);
            assert!(
                gap >= low && gap <= high,
                "retry {n}: {gap:?} not in {low:?}..={high:?}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_budget_stops_retrying() {
    let (store, faults) = retry_over_faults(
        RetryLayer::new()
            .max_retries(10)
            .jitter(Duration::ZERO)
            .budget(Some(Duration::from_millis(350))),
    );
    faults.fail_always(Operation::Get, ErrorKind::Unavailable);
    let started = Instant::now();
    let err = store.get_value("app/k").await.unwrap_err();
    assert!(err.is_exhausted());
    // Attempts at 0, 100 ms, 300 ms; the next would start at 700 ms > 350 ms.
    assert_eq!(faults.calls(Operation::Get), 3);
    assert_eq!(started.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn store_retry_is_configurable() {
    let (store, faults) = retry_over_faults(RetryLayer::new());
    faults.fail_next(Operation::Store, 1, ErrorKind::Unavailable);
    store.put("app/k", "v").await.unwrap();
    assert_eq!(faults.calls(Operation::Store), 2);

    let (store, faults) = retry_over_faults(RetryLayer::new().retry_store(false));
    faults.fail_next(Operation::Store, 1, ErrorKind::Unavailable);
    let err = store.put("app/k", "v").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_exhausted());
    assert_eq!(faults.calls(Operation::Store), 1);
    assert!(store.get_value("app/k").await.unwrap_err().is_not_found());
}

/// Removes the key, then reports a timeout: what a slow backend looks like to the caller.
#[derive(Debug)]
struct RemovesThenTimesOut(MemoryStore);

impl std::fmt::Display for RemovesThenTimesOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RemovesThenTimesOut")
    }
}

#[kms_core::async_trait]
impl KeyStore for RemovesThenTimesOut {
    fn backend(&self) -> &'static str {
        "memory"
    }
    fn capabilities(&self) -> kms_core::Capabilities {
        self.0.capabilities()
    }
    async fn get(&self, key: &KeyName) -> kms_core::Result<StoredSecret> {
        self.0.get(key).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> kms_core::Result<SecretMeta> {
        self.0.store(key, value).await
    }
    async fn remove(&self, key: &KeyName) -> kms_core::Result<()> {
        self.0.remove(key).await?;
        Err(kms_core::Error::new(ErrorKind::Timeout, "slow"))
    }
    async fn list(&self, prefix: &KeyPrefix) -> kms_core::Result<Vec<KeyName>> {
        self.0.list(prefix).await
    }
    async fn health(&self) -> kms_core::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn remove_after_an_ambiguous_timeout_reports_success() {
    let store = Retry::new(RemovesThenTimesOut(MemoryStore::new()), RetryLayer::new());
    store.put("app/k", "v").await.unwrap();
    store.delete("app/k").await.unwrap();
    assert!(store.get_value("app/k").await.unwrap_err().is_not_found());
    // A key that never existed is still not found.
    let err = store.delete("app/never").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let strict = Retry::new(
        RemovesThenTimesOut(MemoryStore::new()),
        RetryLayer::new().retry_remove(false),
    );
    strict.put("app/k", "v").await.unwrap();
    assert_eq!(
        strict.delete("app/k").await.unwrap_err().kind(),
        ErrorKind::Timeout
    );
}

#[test]
fn display_names_the_stack_and_backend_forwards() {
    let store = Retry::new(MemoryStore::new(), RetryLayer::new());
    assert_eq!(store.to_string(), "Retry(Memory)");
    assert_eq!(store.backend(), "memory");
    let debug = format!("{:?}", RetryLayer::new());
    assert!(debug.contains("max_retries: 3"), "{debug}");
}

#[tokio::test(start_paused = true)]
async fn the_budget_counts_from_the_first_failure() {
    let (store, faults) = retry_over_faults(
        RetryLayer::new()
            .max_retries(10)
            .jitter(Duration::ZERO)
            .budget(Some(Duration::from_millis(2500))),
    );
    faults.set_latency(Operation::Get, Duration::from_secs(1));
    faults.fail_always(Operation::Get, ErrorKind::Unavailable);
    let started = Instant::now();
    let err = store.get_value("app/k").await.unwrap_err();
    assert!(err.is_exhausted());
    // First failure at 1 s starts the budget; retries start at +0.1 s and +1.3 s; the next
    // would start at +2.7 s > 2.5 s.
    assert_eq!(faults.calls(Operation::Get), 3);
    assert_eq!(started.elapsed(), Duration::from_millis(3300));
}

/// A refusal proves a write changed nothing only if every attempt of the call was refused: after
/// an attempt that timed out (and may have landed), the final error says the outcome is unknown.
#[tokio::test(start_paused = true)]
async fn a_refusal_after_an_attempt_that_may_have_landed_proves_nothing() {
    let (store, faults) = retry_over_faults(RetryLayer::new());
    faults.fail_next(Operation::Store, 1, ErrorKind::Timeout);
    faults.fail_next(Operation::Store, 10, ErrorKind::RateLimited);
    let err = store.put("app/k", "v").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert!(!err.proves_not_applied(), "{err:?}");

    faults.clear();
    faults.fail_next(Operation::Store, 10, ErrorKind::RateLimited);
    let err = store.put("app/k", "v").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert!(
        err.proves_not_applied(),
        "every attempt was refused: {err:?}"
    );
}

/// Records, for every `store` that reaches it, the attempt number of the call's context.
#[derive(Debug)]
struct Attempts<S> {
    inner: S,
    seen: Arc<Mutex<Vec<u32>>>,
}

impl<S: KeyStore> std::fmt::Display for Attempts<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Attempts({})", self.inner)
    }
}

#[kms_core::async_trait]
impl<S: KeyStore> KeyStore for Attempts<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn capabilities(&self) -> kms_core::Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &KeyName) -> kms_core::Result<StoredSecret> {
        self.inner.get(key).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> kms_core::Result<SecretMeta> {
        let attempt = kms_core::CallContext::current().map_or(0, |c| c.attempt());
        self.seen.lock().unwrap().push(attempt);
        self.inner.store(key, value).await
    }
    async fn remove(&self, key: &KeyName) -> kms_core::Result<()> {
        self.inner.remove(key).await
    }
    async fn list(&self, prefix: &KeyPrefix) -> kms_core::Result<Vec<KeyName>> {
        self.inner.list(prefix).await
    }
    async fn health(&self) -> kms_core::Result<()> {
        self.inner.health().await
    }
}

/// Two retry layers stacked (a service's own retry over the facade's, say) run one logical
/// call: the backend sees the first real try as attempt 1 — not a repeat, so a write does
/// not take its "did an earlier attempt land?" path — and the retry as attempt 2.
#[tokio::test(start_paused = true)]
async fn stacked_retry_layers_count_each_try_once() {
    let faults = FaultStore::new(MemoryStore::new());
    let handle = faults.handle();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = Attempts {
        inner: faults,
        seen: seen.clone(),
    };
    let inner = Retry::new(recorder, RetryLayer::new().max_retries(1).retry_store(true));
    let outer = Retry::new(inner, RetryLayer::new().max_retries(1).retry_store(true));

    outer.put("app/k", "v").await.unwrap();
    assert_eq!(*seen.lock().unwrap(), [1], "a first try is attempt 1");

    seen.lock().unwrap().clear();
    handle.fail_always(Operation::Store, ErrorKind::Timeout);
    let err = outer.put("app/k", "w").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    // Outer attempt 1 = inner try 1; the inner retry is attempt 2; the inner layer's
    // exhausted error is final for the outer one (it does not multiply the attempts).
    assert_eq!(*seen.lock().unwrap(), [1, 2]);
    assert!(err.is_exhausted());
}
