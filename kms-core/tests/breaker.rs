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

    // A trial dropped by its caller never answered: it counts as a failure and re-opens the
    // circuit (giving its slot back would let trials against a hung backend go on for ever).
    let dropped = tokio::time::timeout(Duration::from_millis(10), store.get_value("app/k")).await;
    assert!(dropped.is_err());
    assert_eq!(handle.state(), CircuitState::Open);
    assert_eq!(handle.trials_in_flight(), 0);
    faults.clear();
    tokio::time::advance(Duration::from_secs(5)).await;
    store.get_value("app/k").await.unwrap();
    assert_eq!(handle.state(), CircuitState::HalfOpen);
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
        .open_delay(Duration::from_millis(1))
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

/// A backend whose `get` of each key waits until the test releases it, then answers with
/// what the test set for that key.
#[derive(Debug, Default)]
struct Gated {
    gates: Mutex<std::collections::HashMap<String, (Arc<tokio::sync::Semaphore>, ErrorKind)>>,
    calls: std::sync::atomic::AtomicU64,
}

impl Gated {
    /// Makes `get(key)` wait for `release(key)` and then fail with `kind` (`NotFound` means
    /// success here: the gate answers a fixed value).
    fn gate(&self, key: &str, kind: ErrorKind) {
        self.gates.lock().unwrap().insert(
            key.to_owned(),
            (Arc::new(tokio::sync::Semaphore::new(0)), kind),
        );
    }

    fn release(&self, key: &str) {
        self.gates.lock().unwrap()[key].0.add_permits(1);
    }
}

impl std::fmt::Display for Gated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gated")
    }
}

#[kms_core::async_trait]
impl KeyStore for Gated {
    fn backend(&self) -> &'static str {
        "gated"
    }
    fn capabilities(&self) -> kms_core::Capabilities {
        MemoryStore::new().capabilities()
    }
    async fn get(&self, key: &kms_core::KeyName) -> kms_core::Result<kms_core::StoredSecret> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let gate = self.gates.lock().unwrap().get(key.as_str()).cloned();
        if let Some((semaphore, kind)) = gate {
            semaphore.acquire().await.unwrap().forget();
            if kind != ErrorKind::NotFound {
                return Err(kms_core::Error::new(kind, "gated"));
            }
        }
        Ok(kms_core::StoredSecret {
            value: "v".into(),
            meta: kms_core::SecretMeta::default(),
        })
    }
    async fn store(
        &self,
        _: &kms_core::KeyName,
        _: kms_core::SecretValue,
    ) -> kms_core::Result<kms_core::SecretMeta> {
        Ok(kms_core::SecretMeta::default())
    }
    async fn remove(&self, _: &kms_core::KeyName) -> kms_core::Result<()> {
        Ok(())
    }
    async fn list(&self, _: &kms_core::KeyPrefix) -> kms_core::Result<Vec<kms_core::KeyName>> {
        Ok(Vec::new())
    }
    async fn health(&self) -> kms_core::Result<()> {
        Ok(())
    }
}

/// Old trials in a new breaker period. Defaults. Two slow trials admitted in
/// half-open period 1; a third fails and re-opens the breaker; at +10 s three new trials fill
/// the half-open slots of period 2; at +11 s the two old trials finish (they succeed). Right:
/// their outcomes and their slots belonged to period 1: a fourth call is still refused and the
/// breaker closes only after three successes of period 2.
#[tokio::test(start_paused = true)]
async fn outcomes_only_count_in_the_period_that_admitted_them() {
    // A long trial timeout, so the old trials really finish late instead of timing out.
    let layer = CircuitBreakerLayer::new().trial_timeout(Duration::from_secs(60));
    let handle = layer.handle();
    let backend = Arc::new(Gated::default());
    let store = Arc::new(CircuitBreaker::new(backend.clone(), &layer));
    // Open it: 10 failures.
    backend.gate("fail", ErrorKind::Unavailable);
    for _ in 0..10 {
        backend.release("fail");
        store.get_value("fail").await.unwrap_err();
    }
    assert_eq!(handle.state(), CircuitState::Open);
    tokio::time::advance(Duration::from_secs(5)).await;

    // Period 1: two slow trials (they will succeed), one that fails at once.
    backend.gate("old", ErrorKind::NotFound);
    let old: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.get_value("old").await.map(|_| ()) })
        })
        .collect();
    tokio::task::yield_now().await;
    assert_eq!(handle.state(), CircuitState::HalfOpen);
    assert_eq!(handle.trials_in_flight(), 2);
    backend.release("fail");
    store.get_value("fail").await.unwrap_err();
    assert_eq!(handle.state(), CircuitState::Open);

    // Period 2 at +10 s: three new slow trials fill the slots.
    tokio::time::advance(Duration::from_secs(5)).await;
    backend.gate("new", ErrorKind::NotFound);
    let new: Vec<_> = (0..3)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.get_value("new").await.map(|_| ()) })
        })
        .collect();
    tokio::task::yield_now().await;
    assert_eq!(handle.state(), CircuitState::HalfOpen);
    assert_eq!(handle.trials_in_flight(), 3);

    // +11 s: the two old trials succeed. They count nowhere.
    tokio::time::advance(Duration::from_secs(1)).await;
    backend.release("old");
    backend.release("old");
    for t in old {
        t.await.unwrap().unwrap();
    }
    assert_eq!(handle.state(), CircuitState::HalfOpen);
    assert_eq!(handle.trials_in_flight(), 3, "old trials freed new slots");
    let calls = backend.calls.load(std::sync::atomic::Ordering::SeqCst);
    let fourth = store.get_value("other").await.unwrap_err();
    assert_eq!(
        fourth.kind(),
        ErrorKind::CircuitOpen,
        "a fourth trial was admitted"
    );
    assert_eq!(
        backend.calls.load(std::sync::atomic::Ordering::SeqCst),
        calls
    );

    // One real success of period 2 does not close it; three do.
    backend.release("new");
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
    assert_eq!(handle.state(), CircuitState::HalfOpen);
    backend.release("new");
    backend.release("new");
    for t in new {
        t.await.unwrap().unwrap();
    }
    assert_eq!(handle.state(), CircuitState::Closed);
}

/// Old trials in a new breaker period, the closed side: a call admitted while closed that fails after the
/// circuit went open → half-open → closed again adds nothing to the new window.
#[tokio::test(start_paused = true)]
async fn a_closed_call_from_an_earlier_period_is_not_recorded() {
    let layer = CircuitBreakerLayer::new()
        .success_threshold(1)
        .trial_timeout(Duration::from_secs(60));
    let handle = layer.handle();
    let backend = Arc::new(Gated::default());
    let store = Arc::new(CircuitBreaker::new(backend.clone(), &layer));
    backend.gate("slow", ErrorKind::Unavailable);
    let slow = {
        let store = store.clone();
        tokio::spawn(async move { store.get_value("slow").await.map(|_| ()) })
    };
    tokio::task::yield_now().await;
    backend.gate("fail", ErrorKind::Unavailable);
    for _ in 0..10 {
        backend.release("fail");
        store.get_value("fail").await.unwrap_err();
    }
    assert_eq!(handle.state(), CircuitState::Open);
    tokio::time::advance(Duration::from_secs(5)).await;
    store.get_value("ok").await.unwrap();
    assert_eq!(handle.state(), CircuitState::Closed);
    backend.release("slow");
    slow.await.unwrap().unwrap_err();
    assert_eq!(
        handle.window_failures(),
        0,
        "an old failure entered the new window"
    );
}

/// A trial against a hung backend re-opens the circuit after the trial
/// timeout; the breaker does not stay half-open admitting trials that never answer.
#[tokio::test(start_paused = true)]
async fn a_trial_that_hangs_reopens_the_circuit_at_its_deadline() {
    let layer = CircuitBreakerLayer::new().trial_timeout(Duration::from_secs(2));
    let handle = layer.handle();
    let (store, faults) = breaker(&layer);
    open_it(&store, &faults).await;
    tokio::time::advance(Duration::from_secs(5)).await;
    faults.hang(Operation::Get);
    let started = tokio::time::Instant::now();
    let err = store.get_value("app/k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert_eq!(handle.state(), CircuitState::Open);
    assert_eq!(handle.trials_in_flight(), 0);
    let err = store.get_value("app/k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
}

/// Errors that never reached the backend (an inner breaker's open circuit, a validation
/// refusal) count neither as failures nor as successes.
#[tokio::test(start_paused = true)]
async fn refusals_below_it_count_as_nothing() {
    let layer = CircuitBreakerLayer::new().min_calls(2).window(2);
    let handle = layer.handle();
    let (store, faults) = breaker(&layer);
    store.put("app/k", "v").await.unwrap();
    faults.fail_next(Operation::Get, 1, ErrorKind::Unavailable);
    store.get_value("app/k").await.unwrap_err();
    // Two refusals: were they successes, the window would be [fail, ok] → not open, then
    // [ok, ok]; as nothing, the next failure opens it.
    faults.fail_next(Operation::Get, 2, ErrorKind::CircuitOpen);
    store.get_value("app/k").await.unwrap_err();
    store.get_value("app/k").await.unwrap_err();
    assert_eq!(handle.window_failures(), 1);
    faults.fail_next(Operation::Get, 1, ErrorKind::Unavailable);
    store.get_value("app/k").await.unwrap_err();
    assert_eq!(handle.state(), CircuitState::Open);
}

/// `min_calls(30)` with the default window of 20 could never open. It is a
/// configuration error naming the setting when the stack is built; a breaker built from it
/// anyway answers every call with that error and never calls the backend.
#[tokio::test(start_paused = true)]
async fn a_breaker_that_could_never_open_is_a_configuration_error() {
    let layer = CircuitBreakerLayer::new().min_calls(30);
    let err = kms_core::StoreBuilder::new(MemoryStore::new())
        .layer(layer.clone())
        .try_build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(err.message().contains("`min_calls`"), "{err}");
    let faults = FaultStore::new(MemoryStore::new());
    let calls = faults.handle();
    assert!(CircuitBreaker::try_new(FaultStore::new(MemoryStore::new()), &layer).is_err());
    let store = CircuitBreaker::new(faults, &layer);
    for _ in 0..200 {
        let err = store.get_value("app/k").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration);
    }
    assert_eq!(
        store.health().await.unwrap_err().kind(),
        ErrorKind::Configuration
    );
    assert_eq!(calls.total_calls(), 0);
}

#[test]
fn every_setting_is_validated_by_name() {
    let d = Duration::from_secs;
    let bad: [(CircuitBreakerLayer, &str); 12] = [
        (CircuitBreakerLayer::new().window(0), "window"),
        // Refused, not allocated (4 GiB of window slots).
        (CircuitBreakerLayer::new().window(u32::MAX), "window"),
        (
            CircuitBreakerLayer::new().window(kms_core::CircuitBreakerLayer::MAX_WINDOW + 1),
            "window",
        ),
        (CircuitBreakerLayer::new().min_calls(0), "min_calls"),
        (CircuitBreakerLayer::new().window(5), "min_calls"),
        (
            CircuitBreakerLayer::new().failure_ratio(0.0),
            "failure_ratio",
        ),
        (
            CircuitBreakerLayer::new().failure_ratio(1.5),
            "failure_ratio",
        ),
        (
            CircuitBreakerLayer::new().failure_ratio(f64::NAN),
            "failure_ratio",
        ),
        (CircuitBreakerLayer::new().open_delay(d(0)), "open_delay"),
        (
            CircuitBreakerLayer::new().half_open_calls(0),
            "half_open_calls",
        ),
        (
            CircuitBreakerLayer::new().success_threshold(0),
            "success_threshold",
        ),
        (
            CircuitBreakerLayer::new().trial_timeout(d(0)),
            "trial_timeout",
        ),
    ];
    for (layer, setting) in bad {
        let err = layer.validate().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration);
        assert!(
            err.message().contains(&format!("`{setting}`")),
            "{setting}: {err}"
        );
    }
    for good in [
        CircuitBreakerLayer::new(),
        CircuitBreakerLayer::new()
            .window(5)
            .min_calls(5)
            .failure_ratio(1.0),
        CircuitBreakerLayer::new().min_calls(1).failure_ratio(0.01),
        CircuitBreakerLayer::new().window(kms_core::CircuitBreakerLayer::MAX_WINDOW),
    ] {
        good.validate().unwrap();
    }
}

/// A memory store whose every call waits once (woken at once) before it answers, with no
/// runtime involved: a backend driven by its own I/O thread, polled from any executor.
#[derive(Debug)]
struct YieldsOnce(MemoryStore);

impl std::fmt::Display for YieldsOnce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("YieldsOnce")
    }
}

async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return std::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await;
}

#[kms_core::async_trait]
impl KeyStore for YieldsOnce {
    fn backend(&self) -> &'static str {
        "memory"
    }
    fn capabilities(&self) -> kms_core::Capabilities {
        self.0.capabilities()
    }
    async fn get(&self, key: &kms_core::KeyName) -> kms_core::Result<kms_core::StoredSecret> {
        yield_once().await;
        self.0.get(key).await
    }
    async fn store(
        &self,
        key: &kms_core::KeyName,
        value: kms_core::SecretValue,
    ) -> kms_core::Result<kms_core::SecretMeta> {
        yield_once().await;
        self.0.store(key, value).await
    }
    async fn remove(&self, key: &kms_core::KeyName) -> kms_core::Result<()> {
        yield_once().await;
        self.0.remove(key).await
    }
    async fn list(&self, p: &kms_core::KeyPrefix) -> kms_core::Result<Vec<kms_core::KeyName>> {
        self.0.list(p).await
    }
    async fn health(&self) -> kms_core::Result<()> {
        Ok(())
    }
}

/// Half-open trials polled outside any Tokio runtime (`futures::executor::block_on`, a plain
/// thread), against a backend that does not answer on the first poll: the trial has no timer
/// to bound it, so it runs unbounded (the layers below bound it) instead of panicking with
/// "there is no reactor running"; and the breaker closes after its successes.
#[test]
fn half_open_trials_without_a_runtime_run_and_close_it() {
    let faults = FaultStore::new(YieldsOnce(MemoryStore::new()));
    let handle = faults.handle();
    let layer = CircuitBreakerLayer::new().open_delay(Duration::from_millis(1));
    let store = CircuitBreaker::new(faults, &layer);
    block_on(async {
        store.put("app/k", "v").await.unwrap();
        for _ in 0..4 {
            store.get_value("app/k").await.unwrap();
        }
        handle.fail_next(Operation::Get, 5, ErrorKind::Unavailable);
        for _ in 0..5 {
            let _ = store.get_value("app/k").await;
        }
        assert_eq!(layer.handle().state(), CircuitState::Open);
        std::thread::sleep(Duration::from_millis(5));
        for _ in 0..3 {
            assert_eq!(
                store
                    .get_value("app/k")
                    .await
                    .unwrap()
                    .expose_str()
                    .unwrap(),
                "v"
            );
        }
        assert_eq!(layer.handle().state(), CircuitState::Closed);
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
