//! [`FaultStore`]: a test decorator that injects errors and latency and counts calls.
//!
//! The whole story is on [`FaultStore`](crate::FaultStore) (this module is private; its items are re-exported at the crate root).

use std::fmt;
use std::future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Error, ErrorKind, Result};
use crate::key_name::{KeyName, KeyPrefix};
use crate::secret::{SecretMeta, SecretValue, StoredSecret};
use crate::store::{Capabilities, KeyStore, Operation};

/// [`FaultStore`]: a test decorator that injects errors and latency and counts calls.
///
/// Available with the `testing` feature. It makes the error paths of decorators (retry,
/// breaker, cache, metrics) deterministic: fail the next *n* calls with a chosen kind, delay or
/// hang an operation (use tokio's paused time, not real sleeps), and prove by the call counters
/// whether a call reached the backend at all.
///
/// A decorator that injects faults into the store it wraps. See the [module docs](FaultStore).
///
/// ```
/// use kms_core::{ErrorKind, KeyStoreExt, MemoryStore, Operation};
/// use kms_core::fault::FaultStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = FaultStore::new(MemoryStore::new());
/// let faults = store.handle();
/// faults.fail_next(Operation::Store, 1, ErrorKind::Unavailable);
/// assert_eq!(store.put("k", "v").await.unwrap_err().kind(), ErrorKind::Unavailable);
/// assert!(store.put("k", "v").await.is_ok());
/// assert_eq!(faults.calls(Operation::Store), 2);
/// # }
/// ```
pub struct FaultStore<S> {
    inner: S,
    state: Arc<FaultState>,
}

/// A cloneable handle that controls a [`FaultStore`] after it was moved into a stack.
#[derive(Clone)]
pub struct FaultHandle(Arc<FaultState>);

#[derive(Default)]
struct FaultState {
    calls: [AtomicU64; 5],
    rules: Mutex<Vec<Rule>>,
    delays: Mutex<[Delay; 5]>,
}

struct Rule {
    op: Option<Operation>,
    /// `None`: until cleared.
    remaining: Option<u64>,
    kind: ErrorKind,
}

#[derive(Clone, Copy, Default, PartialEq)]
enum Delay {
    #[default]
    None,
    Latency(Duration),
    Hang,
}

fn index(op: Operation) -> usize {
    match op {
        Operation::Get => 0,
        Operation::Store => 1,
        Operation::Remove => 2,
        Operation::List => 3,
        Operation::Health => 4,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<S: KeyStore> FaultStore<S> {
    /// Wraps `inner`, with no faults configured.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            state: Arc::default(),
        }
    }

    /// A handle to configure faults and read counters.
    pub fn handle(&self) -> FaultHandle {
        FaultHandle(self.state.clone())
    }

    /// The store this one wraps.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    async fn before(&self, op: Operation) -> Result<()> {
        let state = &self.state;
        state.calls[index(op)].fetch_add(1, Ordering::SeqCst);
        let delay = lock(&state.delays)[index(op)];
        match delay {
            Delay::None => {}
            Delay::Latency(d) => tokio::time::sleep(d).await,
            Delay::Hang => future::pending::<()>().await,
        }
        let mut rules = lock(&state.rules);
        let Some(i) = rules.iter().position(|r| r.op.is_none_or(|o| o == op)) else {
            return Ok(());
        };
        let kind = rules[i].kind;
        if let Some(n) = &mut rules[i].remaining {
            *n -= 1;
            if *n == 0 {
                rules.remove(i);
            }
        }
        Err(Error::new(kind, format!("injected fault on {op}")).with_backend(self.inner.backend()))
    }
}

impl FaultHandle {
    /// Fails the next `n` calls of `op` with an error of `kind`.
    pub fn fail_next(&self, op: Operation, n: u64, kind: ErrorKind) {
        if n > 0 {
            lock(&self.0.rules).push(Rule {
                op: Some(op),
                remaining: Some(n),
                kind,
            });
        }
    }

    /// Fails the next `n` calls of any operation with an error of `kind`.
    pub fn fail_next_any(&self, n: u64, kind: ErrorKind) {
        if n > 0 {
            lock(&self.0.rules).push(Rule {
                op: None,
                remaining: Some(n),
                kind,
            });
        }
    }

    /// Fails every call of `op` with `kind` until [`clear`](Self::clear).
    pub fn fail_always(&self, op: Operation, kind: ErrorKind) {
        lock(&self.0.rules).push(Rule {
            op: Some(op),
            remaining: None,
            kind,
        });
    }

    /// Delays every call of `op` by `latency` (a `tokio::time::sleep`, so paused time works).
    pub fn set_latency(&self, op: Operation, latency: Duration) {
        lock(&self.0.delays)[index(op)] = Delay::Latency(latency);
    }

    /// Makes every call of `op` hang forever (until the caller drops the future).
    pub fn hang(&self, op: Operation) {
        lock(&self.0.delays)[index(op)] = Delay::Hang;
    }

    /// Removes every configured fault and delay (counters are kept).
    pub fn clear(&self) {
        lock(&self.0.rules).clear();
        *lock(&self.0.delays) = [Delay::None; 5];
    }

    /// How many calls of `op` reached this store (failed ones included).
    pub fn calls(&self, op: Operation) -> u64 {
        self.0.calls[index(op)].load(Ordering::SeqCst)
    }

    /// How many calls of any operation reached this store.
    pub fn total_calls(&self) -> u64 {
        Operation::ALL.iter().map(|&op| self.calls(op)).sum()
    }

    /// Sets every counter back to zero.
    pub fn reset_calls(&self) {
        for c in &self.0.calls {
            c.store(0, Ordering::SeqCst);
        }
    }
}

impl fmt::Debug for FaultHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultHandle")
            .field("total_calls", &self.total_calls())
            .finish_non_exhaustive()
    }
}

impl<S: KeyStore> fmt::Display for FaultStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fault({})", self.inner)
    }
}

impl<S: KeyStore> fmt::Debug for FaultStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultStore")
            .field("inner", &self.inner)
            .field("handle", &self.handle())
            .finish()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: KeyStore> KeyStore for FaultStore<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        self.before(Operation::Get).await?;
        self.inner.get(key).await
    }
    fn get_now(&self, _key: &KeyName) -> Option<Result<StoredSecret>> {
        // Declined: every read goes through `get`, where faults are injected and counted.
        None
    }
    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        self.before(Operation::Get).await?;
        self.inner.get_version(key, version).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        self.before(Operation::Store).await?;
        self.inner.store(key, value).await
    }
    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> Result<SecretMeta> {
        self.before(Operation::Store).await?;
        self.inner.store_if_version(key, value, expected).await
    }
    async fn remove(&self, key: &KeyName) -> Result<()> {
        self.before(Operation::Remove).await?;
        self.inner.remove(key).await
    }
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        self.before(Operation::List).await?;
        self.inner.list(prefix).await
    }
    async fn health(&self) -> Result<()> {
        self.before(Operation::Health).await?;
        self.inner.health().await
    }
}
