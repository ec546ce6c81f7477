//! [`TimeoutLayer`] and [`Timeout`]: a deadline per operation.
//!
//! The whole story is on [`TimeoutLayer`](crate::TimeoutLayer) (this module is private; its items are re-exported at the crate root).

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Sleep;

use super::deadline::poll_deadline;
use super::layer::Layer;
use crate::error::{Error, ErrorKind, Result};
use crate::key_name::{KeyName, KeyPrefix};
use crate::secret::{SecretMeta, SecretValue, StoredSecret};
use crate::store::{Capabilities, KeyStore, Operation};

/// [`TimeoutLayer`] and [`Timeout`]: a deadline per operation.
///
/// The deadline runs from the first time the call waits (a call that completes on its first
/// poll arms no timer, so the fast path costs almost nothing). On expiry the inner future is
/// dropped (its I/O is cancelled) and the caller gets an
/// [`ErrorKind::Timeout`] error, which is retryable. Below a [`RetryLayer`](crate::RetryLayer)
/// (`Retry(Timeout(…))`, what [`StoreBuilder::resilience`](crate::StoreBuilder::resilience)
/// builds) the deadline bounds each attempt; above it, the whole call including backoff.
///
/// The deadline is a Tokio timer. A call polled outside any Tokio runtime (a plain thread,
/// `futures::executor::block_on`) that does not finish on its first poll has no timer to arm:
/// it runs to its own end instead of panicking ("there is no reactor running").
///
/// Configures [`Timeout`]: one deadline per [`Operation`] (`get_version` uses `Get`'s).
///
/// ```
/// use std::time::Duration;
/// use kms_core::{MemoryStore, Operation, StoreBuilder, TimeoutLayer};
///
/// let layer = TimeoutLayer::new() // 5 s for everything …
///     .operation(Operation::List, Duration::from_secs(30)); // … but listing may be slow
/// assert_eq!(layer.deadline(Operation::List), Duration::from_secs(30));
/// let store = StoreBuilder::new(MemoryStore::new()).layer(layer).build();
/// assert_eq!(store.to_string(), "Timeout(Memory)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeoutLayer {
    deadlines: [Duration; 5],
}

impl Default for TimeoutLayer {
    fn default() -> Self {
        Self::all(TimeoutLayer::DEFAULT_TIMEOUT)
    }
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

impl TimeoutLayer {
    /// Reference setting: the deadline of every operation.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// The reference setting: 5 s for every operation.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same deadline for every operation.
    pub fn all(deadline: Duration) -> Self {
        Self {
            deadlines: [deadline; 5],
        }
    }

    /// Sets the deadline of one kind of operation.
    #[must_use]
    pub fn operation(mut self, op: Operation, deadline: Duration) -> Self {
        self.deadlines[index(op)] = deadline;
        self
    }

    /// The deadline of `op`.
    pub fn deadline(&self, op: Operation) -> Duration {
        self.deadlines[index(op)]
    }

    /// Checks the settings: every deadline is longer than zero.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] naming the operation whose deadline is zero
    /// (`deadline(get)` …).
    pub fn validate(&self) -> Result<()> {
        for op in Operation::ALL {
            if self.deadline(op).is_zero() {
                return Err(Error::configuration(
                    &format!("deadline({op})"),
                    "must be longer than zero",
                ));
            }
        }
        Ok(())
    }
}

impl Layer for TimeoutLayer {
    fn layer(&self, inner: Arc<dyn KeyStore>) -> Arc<dyn KeyStore> {
        Arc::new(Timeout::new(inner, *self))
    }

    fn validate(&self) -> Result<()> {
        TimeoutLayer::validate(self)
    }
}

/// The decorator [`TimeoutLayer`] makes; see the [module docs](TimeoutLayer).
#[derive(Debug)]
pub struct Timeout<S> {
    inner: S,
    config: TimeoutLayer,
    /// The configuration error every call answers with, if `config` was invalid.
    refused: Option<Error>,
}

impl<S: KeyStore> Timeout<S> {
    /// Wraps `inner` with `config`. With an invalid `config` (see
    /// [`TimeoutLayer::validate`]) every call answers that configuration error without
    /// calling `inner`; [`try_new`](Self::try_new) reports it here instead.
    pub fn new(inner: S, config: TimeoutLayer) -> Self {
        Self {
            inner,
            refused: config.validate().err(),
            config,
        }
    }

    /// Wraps `inner` with `config`, checked first.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] from [`TimeoutLayer::validate`].
    pub fn try_new(inner: S, config: TimeoutLayer) -> Result<Self> {
        config.validate()?;
        Ok(Self::new(inner, config))
    }

    /// The store this one wraps.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    async fn run<T>(&self, op: Operation, fut: impl Future<Output = Result<T>>) -> Result<T> {
        if let Some(err) = &self.refused {
            return Err(err.clone());
        }
        let deadline = self.config.deadline(op);
        let mut fut = pin!(fut);
        // The timer is armed only if the first poll does not finish the call: a call answered
        // at once (a memory store, a cache below) pays no timer registration.
        let mut timer: Option<Option<Pin<Box<Sleep>>>> = None;
        let finished = poll_fn(|cx| {
            if let Poll::Ready(result) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(result));
            }
            poll_deadline(&mut timer, deadline, cx)
        })
        .await;
        finished.unwrap_or_else(|| {
            Err(Error::new(
                ErrorKind::Timeout,
                format!("{op} did not finish within {deadline:?}"),
            )
            .with_backend(self.inner.backend()))
        })
    }
}

impl<S: KeyStore> fmt::Display for Timeout<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timeout({})", self.inner)
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: KeyStore> KeyStore for Timeout<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        self.run(Operation::Get, self.inner.get(key)).await
    }
    fn get_now(&self, key: &KeyName) -> Option<Result<StoredSecret>> {
        // A synchronous answer cannot outlive a deadline.
        self.inner.get_now(key)
    }
    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        self.run(Operation::Get, self.inner.get_version(key, version))
            .await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        self.run(Operation::Store, self.inner.store(key, value))
            .await
    }
    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> Result<SecretMeta> {
        self.run(
            Operation::Store,
            self.inner.store_if_version(key, value, expected),
        )
        .await
    }
    async fn remove(&self, key: &KeyName) -> Result<()> {
        self.run(Operation::Remove, self.inner.remove(key)).await
    }
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        self.run(Operation::List, self.inner.list(prefix)).await
    }
    async fn health(&self) -> Result<()> {
        self.run(Operation::Health, self.inner.health()).await
    }
}
