//! Counting retries without a hook in the retry layer: [`BackendMonitor::retry`] puts the
//! retry layer between two of its own pieces, `Retries(Retry(Monitored(…)))`.
//!
//! `Retries` runs each call inside a tokio task-local attempt counter (a `scope` around that
//! call's future, not the task: it works wherever the future is polled, also inside a cache
//! load). The monitor below the retry layer sees every attempt: it bumps the counter, and an
//! attempt after the first is a retry of the previous attempt's error, counted in
//! `<p>_key_backend_retries_total{operation,backend,store,kind}` with a `DEBUG` event on target
//! `kms::retry` (attempt number, delay since the failed attempt ended). Calls that do not come
//! through `Retries` (the health probe, a stack without it) are not counted as retries.
//!
//! [`BackendMonitor::retry`]: crate::BackendMonitor::retry

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;

use kms_core::{
    Capabilities, ErrorKind, KeyName, KeyPrefix, KeyStore, Result, SecretMeta, SecretValue,
    StoredSecret, async_trait,
};

/// One logical call's attempts so far.
#[derive(Clone, Copy, Default)]
pub(crate) struct Attempts {
    /// Attempts started.
    pub started: u32,
    /// The error kind of the last finished attempt, if it failed.
    pub last_error: Option<ErrorKind>,
    /// The latency clock's raw reading when the last attempt finished.
    pub last_end: u64,
}

tokio::task_local! {
    static ATTEMPTS: Cell<Attempts>;
}

/// Starts an attempt: returns the state before it, or `None` outside a `Retries` scope.
pub(crate) fn start_attempt() -> Option<Attempts> {
    ATTEMPTS
        .try_with(|cell| {
            let before = cell.get();
            cell.set(Attempts {
                started: before.started + 1,
                ..before
            });
            before
        })
        .ok()
}

/// Ends an attempt (no-op outside a `Retries` scope).
pub(crate) fn end_attempt(error: Option<ErrorKind>, end: u64) {
    let _ = ATTEMPTS.try_with(|cell| {
        let state = cell.get();
        cell.set(Attempts {
            last_error: error,
            last_end: end,
            ..state
        });
    });
}

/// The decorator that scopes each call's attempt counter; see the module docs.
pub struct Retries {
    pub(crate) inner: Arc<dyn KeyStore>,
}

impl fmt::Display for Retries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Retries({})", self.inner)
    }
}

impl fmt::Debug for Retries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retries")
            .field("inner", &self.inner)
            .finish()
    }
}

fn scoped<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    ATTEMPTS.scope(Cell::new(Attempts::default()), fut)
}

#[async_trait]
impl KeyStore for Retries {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        scoped(self.inner.get(key)).await
    }
    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        scoped(self.inner.get_version(key, version)).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        scoped(self.inner.store(key, value)).await
    }
    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> Result<SecretMeta> {
        scoped(self.inner.store_if_version(key, value, expected)).await
    }
    async fn remove(&self, key: &KeyName) -> Result<()> {
        scoped(self.inner.remove(key)).await
    }
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        scoped(self.inner.list(prefix)).await
    }
    async fn health(&self) -> Result<()> {
        scoped(self.inner.health()).await
    }
}
