//! The cancellation harness: every operation, dropped at every await point, leaves nothing a
//! later call can tell apart from "that operation failed" (issue 13).
//!
//! Available with the `conformance` feature. The harness polls an operation `k` times (each
//! poll after the operation woke its task, so every poll is real progress) and drops it, for
//! every `k` from 0 until the operation completes, and after each drop checks the invariants:
//!
//! - a following `get` sees what the backend holds: the old value or the new one for a
//!   dropped write (it may or may not have landed), never anything else;
//! - in-flight bookkeeping returns to zero (when the layer exposes a count of it);
//! - nothing is wedged: a complete write afterwards reads back, and `list` shows the key.
//!
//! [`cancellation_safety`] is a conformance case (run by
//! [`run_all`](crate::conformance::run_all) and [`conformance_tests!`](crate::conformance_tests))
//! over any store, backends included. [`cancellation_safety_over`] runs the same sequence
//! over a decorator whose backend it controls, with await points before and after each write
//! lands and the backend's own answer to compare with, which is what catches a cache still
//! serving a value older than a write that landed.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::conformance::{TestStore, unique_name};
use crate::error::{ErrorKind, Result};
use crate::key_name::{KeyName, KeyPrefix};
use crate::memory::MemoryStore;
use crate::secret::{SecretMeta, SecretValue, StoredSecret};
use crate::store::{Capabilities, KeyStore};

/// How long one poll may wait to be woken before the harness calls the operation stalled.
const STALL: Duration = Duration::from_secs(10);

/// The most polls tried per operation: an operation that needs more (a slow network round
/// trip polled many times) is still checked at every point up to here, then run to the end.
pub const MAX_POLLS: usize = 48;

/// Wakes the harness's task when the operation under test wakes its own.
struct Wakeup(Notify);

impl Wake for Wakeup {
    fn wake(self: Arc<Self>) {
        self.0.notify_one();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.notify_one();
    }
}

/// Polls `fut` at most `polls` times, each poll after the previous one woke the task, then
/// drops it. `Some(output)` if it completed within those polls; `polls == 0` drops it unpolled.
///
/// # Panics
///
/// If the operation is not woken within 10 s of a poll that returned `Pending` (it stalled).
pub async fn poll_then_drop<F: Future>(fut: F, polls: usize) -> Option<F::Output> {
    let wakeup = Arc::new(Wakeup(Notify::new()));
    let waker = Waker::from(wakeup.clone());
    let mut fut = pin!(fut);
    for n in 0..polls {
        if n > 0 {
            tokio::time::timeout(STALL, wakeup.0.notified())
                .await
                .expect("the operation was not woken within 10 s: it stalled");
        }
        // The context lives only for the poll, so this future stays `Send`.
        if let Poll::Ready(output) = fut.as_mut().poll(&mut Context::from_waker(&waker)) {
            return Some(output);
        }
    }
    None
}

/// The operations the harness drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Store,
    Remove,
    Get,
    List,
}

const OPS: [Op; 4] = [Op::Store, Op::Remove, Op::Get, Op::List];

/// What a `get` answered, comparable.
fn read(result: Result<StoredSecret>) -> std::result::Result<Vec<u8>, ErrorKind> {
    result
        .map(|s| s.value.expose_secret().to_vec())
        .map_err(|e| e.kind())
}

/// Starts `op` on `key` (holding `OLD`) through `store`, as a boxed future.
fn start<'a>(
    store: &'a TestStore,
    op: Op,
    key: &'a KeyName,
    prefix: &'a KeyPrefix,
) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
    match op {
        Op::Store => Box::pin(async move {
            let _ = store.store(key, SecretValue::from(NEW)).await;
        }),
        Op::Remove => Box::pin(async move {
            let _ = store.remove(key).await;
        }),
        Op::Get => Box::pin(async move {
            let _ = store.get(key).await;
        }),
        Op::List => Box::pin(async move {
            let _ = store.list(prefix).await;
        }),
    }
}

const OLD: &str = "cancellation-old";
const NEW: &str = "cancellation-new";
const AFTER: &str = "cancellation-after";

/// What a `get` may answer after `op` was dropped, the key holding `OLD` before.
fn allowed(op: Op, got: &std::result::Result<Vec<u8>, ErrorKind>) -> bool {
    let is = |v: &str| matches!(got, Ok(b) if b == v.as_bytes());
    match op {
        Op::Store => is(OLD) || is(NEW),
        Op::Remove => is(OLD) || got == &Err(ErrorKind::NotFound),
        Op::Get | Op::List => is(OLD),
    }
}

/// Waits (at most 10 s) until `in_flight` reads zero.
async fn settle(store: &TestStore, in_flight: Option<&(dyn Fn() -> usize + Send + Sync)>) {
    let Some(in_flight) = in_flight else { return };
    let deadline = tokio::time::Instant::now() + STALL;
    while in_flight() != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{store}: {} operations still in flight 10 s after the harness dropped them",
            in_flight()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Runs every operation against `store`, dropped after `k` polls for every `k` until it
/// completes, and checks the invariants after each drop (see the [module docs](self)). With
/// `backend`, a `get` through `store` must answer exactly what `backend` answers; with
/// `in_flight`, that count must come back to zero.
async fn run(
    store: &TestStore,
    backend: Option<&TestStore>,
    in_flight: Option<&(dyn Fn() -> usize + Send + Sync)>,
) {
    let can_list = store.capabilities().list;
    for op in OPS {
        if op == Op::List && !can_list {
            continue;
        }
        for polls in 0..=MAX_POLLS {
            let ns = format!("conformance/{}", unique_name("cancel"));
            let key = KeyName::new(format!("{ns}/key")).expect("valid name");
            let prefix = KeyPrefix::new(format!("{ns}/")).expect("valid prefix");
            store
                .store(&key, SecretValue::from(OLD))
                .await
                .unwrap_or_else(|e| panic!("{store}: setup store failed: {e}"));
            // Cached now, for a cache: the dropped operation must not leave this behind.
            let _ = store.get(&key).await;
            let polls = if polls == MAX_POLLS {
                usize::MAX
            } else {
                polls
            };
            let completed = poll_then_drop(start(store, op, &key, &prefix), polls)
                .await
                .is_some();
            settle(store, in_flight).await;

            let got = read(store.get(&key).await);
            assert!(
                allowed(op, &got),
                "{store}: {op:?} dropped after {polls} polls, then get answered {:?}",
                got.as_ref()
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            );
            if let Some(backend) = backend {
                let truth = read(backend.get(&key).await);
                assert_eq!(
                    got, truth,
                    "{store}: {op:?} dropped after {polls} polls: get disagrees with the backend"
                );
                if can_list {
                    let listed = store
                        .list(&prefix)
                        .await
                        .unwrap_or_else(|e| panic!("{store}: list: {e}"));
                    assert_eq!(
                        listed.contains(&key),
                        truth.is_ok(),
                        "{store}: {op:?} dropped after {polls} polls: list disagrees with get"
                    );
                }
            }
            // Nothing wedged: a complete write reads back and is listed.
            store
                .store(&key, SecretValue::from(AFTER))
                .await
                .unwrap_or_else(|e| {
                    panic!("{store}: {op:?} dropped after {polls} polls: a later store failed: {e}")
                });
            let after = read(store.get(&key).await);
            assert_eq!(
                after,
                Ok(AFTER.as_bytes().to_vec()),
                "{store}: {op:?} dropped after {polls} polls: a later write is not read back"
            );
            if can_list {
                let listed = store
                    .list(&prefix)
                    .await
                    .unwrap_or_else(|e| panic!("{store}: list: {e}"));
                assert!(listed.contains(&key), "{store}: written key not listed");
            }
            let _ = store.remove(&key).await;
            settle(store, in_flight).await;
            if completed {
                break;
            }
        }
    }
}

/// The conformance case: every operation of `store` dropped at every await point (see the
/// [module docs](self)). Over a real backend a dropped write may land after the drop, so a
/// `get` must answer the old or the new value; nothing may be wedged afterwards.
pub async fn cancellation_safety(store: &TestStore) {
    run(store, None, None).await;
}

/// The harness over a decorator: `wrap` builds it over a backend this function controls (an
/// in-memory store that yields before and after each operation lands, so dropping can happen
/// on either side of the write), and `in_flight` reads the decorator's in-flight bookkeeping
/// (loads, trials; `|| 0` if it has none). After every drop, a `get` through the decorator
/// must answer exactly what the backend holds, `list` must agree, and `in_flight` must come
/// back to zero.
///
/// ```
/// use std::sync::Arc;
/// use kms_core::{CircuitBreakerLayer, Layer};
/// use kms_core::cancellation::cancellation_safety_over;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let breaker = CircuitBreakerLayer::new();
/// let handle = breaker.handle();
/// cancellation_safety_over(
///     |backend| breaker.layer(backend),
///     &move || handle.trials_in_flight() as usize,
/// )
/// .await;
/// # }
/// ```
pub async fn cancellation_safety_over(
    wrap: impl FnOnce(TestStore) -> TestStore,
    in_flight: &(dyn Fn() -> usize + Send + Sync),
) {
    let backend: TestStore = Arc::new(Stepping(MemoryStore::new()));
    let store = wrap(backend.clone());
    run(&store, Some(&backend), Some(in_flight)).await;
}

/// A memory store with an await point before and after each operation lands.
#[derive(Debug)]
struct Stepping(MemoryStore);

impl fmt::Display for Stepping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Stepping({})", self.0)
    }
}

#[async_trait]
impl KeyStore for Stepping {
    fn backend(&self) -> &'static str {
        self.0.backend()
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        tokio::task::yield_now().await;
        let got = self.0.get(key).await;
        tokio::task::yield_now().await;
        got
    }
    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        tokio::task::yield_now().await;
        self.0.get_version(key, version).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        tokio::task::yield_now().await;
        let meta = self.0.store(key, value).await;
        tokio::task::yield_now().await;
        meta
    }
    async fn remove(&self, key: &KeyName) -> Result<()> {
        tokio::task::yield_now().await;
        let done = self.0.remove(key).await;
        tokio::task::yield_now().await;
        done
    }
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        tokio::task::yield_now().await;
        let listed = self.0.list(prefix).await;
        tokio::task::yield_now().await;
        listed
    }
    async fn health(&self) -> Result<()> {
        Ok(())
    }
}
