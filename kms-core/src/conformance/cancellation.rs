//! The cancellation harness (documented in the conformance module).

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::support::{TestStore, unique_name};
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
    landing: Option<&(dyn Fn() -> usize + Send + Sync)>,
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
            if let Some(landing) = landing {
                // A read while the dropped write is still on its way to the backend: either
                // value is right now, but what it loads must not outlive the write landing.
                let early = read(store.get(&key).await);
                assert!(
                    allowed(op, &early),
                    "{store}: {op:?} dropped after {polls} polls, then get answered {early:?}"
                );
                settle(store, Some(landing)).await;
            }

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
/// [conformance module docs](super#cancellation)). Over a real backend a dropped write may land after the drop, so a
/// `get` must answer the old or the new value; nothing may be wedged afterwards.
pub async fn cancellation_safety(store: &TestStore) {
    run(store, None, None, None).await;
}

/// The harness over a decorator: `wrap` builds it over a backend this function controls (an
/// in-memory store that yields before and after each operation lands, so dropping can happen
/// on either side of the write), and `in_flight` reads the decorator's in-flight bookkeeping
/// (loads, trials; `|| 0` if it has none). After every drop, a `get` through the decorator
/// must answer exactly what the backend holds, `list` must agree, and `in_flight` must come
/// back to zero.
///
/// It runs twice, `wrap` called once for each backend: first over a backend whose dropped
/// writes stop where they were dropped, then over one that runs every write to completion on
/// its own task (what a network backend does once the request is sent, and what
/// [`WriteOrder`](crate::WriteOrder) makes every backend do), so a dropped write lands *after*
/// the drop. There, a `get` is made before it lands, and once it has landed the decorator must
/// answer what the backend holds: a cache must not keep what it read in between.
///
/// ```
/// use std::sync::Arc;
/// use kms_core::{CircuitBreakerLayer, Layer};
/// use kms_core::conformance::cancellation_safety_over;
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
    wrap: impl Fn(TestStore) -> TestStore,
    in_flight: &(dyn Fn() -> usize + Send + Sync),
) {
    for detached in [false, true] {
        let stepping = Arc::new(Stepping {
            store: Arc::new(MemoryStore::new()),
            detached,
            landing: Arc::new(AtomicUsize::new(0)),
        });
        let landing = stepping.landing.clone();
        let backend: TestStore = stepping;
        let store = wrap(backend.clone());
        let landing = move || landing.load(Ordering::SeqCst);
        let landing: &(dyn Fn() -> usize + Send + Sync) = &landing;
        run(
            &store,
            Some(&backend),
            Some(in_flight),
            detached.then_some(landing),
        )
        .await;
    }
}

/// A memory store with an await point before and after each operation lands; `detached`, its
/// writes run on their own task, to completion even when their caller drops them.
#[derive(Debug)]
struct Stepping {
    store: Arc<MemoryStore>,
    detached: bool,
    /// Detached writes not landed yet.
    landing: Arc<AtomicUsize>,
}

impl Stepping {
    /// Runs `write` (after two more await points) on its own task when detached.
    async fn write<T: Send + 'static>(
        &self,
        write: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        if !self.detached {
            return write.await;
        }
        self.landing.fetch_add(1, Ordering::SeqCst);
        let landing = self.landing.clone();
        let task = tokio::spawn(async move {
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            let result = write.await;
            landing.fetch_sub(1, Ordering::SeqCst);
            result
        });
        task.await.expect("the write task panicked")
    }
}

impl fmt::Display for Stepping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let detached = if self.detached { "Detached" } else { "" };
        write!(f, "{detached}Stepping({})", self.store)
    }
}

#[async_trait]
impl KeyStore for Stepping {
    fn backend(&self) -> &'static str {
        self.store.backend()
    }
    fn capabilities(&self) -> Capabilities {
        self.store.capabilities()
    }
    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        tokio::task::yield_now().await;
        let got = self.store.get(key).await;
        tokio::task::yield_now().await;
        got
    }
    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        tokio::task::yield_now().await;
        self.store.get_version(key, version).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        tokio::task::yield_now().await;
        let (store, key) = (self.store.clone(), key.clone());
        let meta = self
            .write(async move { store.store(&key, value).await })
            .await;
        tokio::task::yield_now().await;
        meta
    }
    async fn remove(&self, key: &KeyName) -> Result<()> {
        tokio::task::yield_now().await;
        let (store, key) = (self.store.clone(), key.clone());
        let done = self.write(async move { store.remove(&key).await }).await;
        tokio::task::yield_now().await;
        done
    }
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        tokio::task::yield_now().await;
        let listed = self.store.list(prefix).await;
        tokio::task::yield_now().await;
        listed
    }
    async fn health(&self) -> Result<()> {
        Ok(())
    }
}
