//! [`RetryLayer`] and [`Retry`]: repeat transient failures with jittered exponential backoff.
//!
//! The whole story is on [`RetryLayer`](crate::RetryLayer) (this module is private; its items are re-exported at the crate root).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use backon::Retryable;

use super::layer::Layer;
use crate::error::{Error, ErrorKind, Result};
use crate::key_name::{KeyName, KeyPrefix};
use crate::secret::{SecretMeta, SecretValue, StoredSecret};
use crate::store::{Capabilities, KeyStore};
use crate::write::context::CallContext;

/// [`RetryLayer`] and [`Retry`]: repeat transient failures with jittered exponential backoff.
///
/// # What is retried
///
/// Only errors whose [`Error::is_retryable`] is true: rate limited, timeout, unavailable. Not
/// found, permission and authentication errors, invalid input, conflicts and an open circuit
/// are returned at once. An error a retry layer already gave up on is marked
/// [`exhausted`](Error::exhausted), so a second retry layer above never multiplies attempts.
///
/// Per operation:
///
/// - `get`, `get_version`, `list`, `health` are reads: repeating them changes nothing, so they
///   are always retried.
/// - `store` writes the same bytes again. Every attempt of one call carries the same
///   [`CallContext`] (one id, an attempt counter), so a backend that keeps versions records
///   one version even when an attempt timed out *after* the backend applied it (AWS: the id
///   is the `ClientRequestToken`; see [`write`](crate::write) for each backend's
///   guarantee). A concurrent writer's value written between two attempts is overwritten
///   (last writer wins, as without retry). Retried by default;
///   [`RetryLayer::retry_store`]`(false)` turns it off.
/// - `store_if_version` (check-and-set) is never retried: an attempt that landed, then timed
///   out, would turn the retry into a Conflict and hide the success.
/// - `remove` is retried by default ([`RetryLayer::retry_remove`]). When an earlier attempt
///   ended in a **timeout** (its outcome is unknown: the backend may have removed the key) and a
///   later attempt answers not-found, the key is gone as asked, so the layer returns `Ok(())`
///   instead of a confusing not-found. A not-found on the first attempt is returned as is.
///
/// # Backoff
///
/// The delay before retry *n* (0-based) is `base · 2ⁿ + uniform(0 ..= jitter)`, capped at
/// `max_delay` [defaults: 3 retries, 100 ms base, 50 ms jitter, 5 s cap]. A time budget
/// [default 10 s] stops retrying when the next attempt would start after it. The budget counts
/// from the end of the first (failed) attempt, which the timeout layer below bounds, so a call
/// lasts at most *first-attempt timeout + budget + last-attempt timeout*; a call that succeeds at
/// once never reads the clock. Sleeping uses
/// `tokio::time::sleep` (through [`backon`]), so tests drive it with paused time.
///
/// # Order with the timeout layer
///
/// Put [`TimeoutLayer`](crate::TimeoutLayer) *below* the retry layer (`Retry(Timeout(…))`):
/// each attempt then gets its own deadline and a hung attempt becomes a retryable timeout. A
/// timeout *above* retry bounds the whole call instead, retries included.
/// [`StoreBuilder::resilience`](crate::StoreBuilder::resilience) builds the right order.
///
/// Configures [`Retry`]; see the [module docs](RetryLayer) for what is retried and why.
///
/// ```
/// use std::time::Duration;
/// use kms_core::{MemoryStore, RetryLayer, StoreBuilder};
///
/// let store = StoreBuilder::new(MemoryStore::new())
///     .layer(RetryLayer::new().max_retries(5).base_delay(Duration::from_millis(50)))
///     .build();
/// assert_eq!(store.to_string(), "Retry(Memory)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryLayer {
    max_retries: u32,
    base: Duration,
    jitter: Duration,
    max_delay: Duration,
    budget: Option<Duration>,
    retry_store: bool,
    retry_remove: bool,
}

impl Default for RetryLayer {
    fn default() -> Self {
        Self {
            max_retries: RetryLayer::DEFAULT_MAX_RETRIES,
            base: RetryLayer::DEFAULT_RETRY_BASE,
            jitter: RetryLayer::DEFAULT_RETRY_JITTER,
            max_delay: Duration::from_secs(5),
            budget: Some(Duration::from_secs(10)),
            retry_store: true,
            retry_remove: true,
        }
    }
}

impl RetryLayer {
    /// Reference setting: the largest random delay added to each backoff.
    pub const DEFAULT_RETRY_JITTER: Duration = Duration::from_millis(50);

    /// Reference setting: the first backoff delay.
    pub const DEFAULT_RETRY_BASE: Duration = Duration::from_millis(100);

    /// Reference setting: retries after the first attempt.
    pub const DEFAULT_MAX_RETRIES: u32 = 3;

    /// The reference settings: 3 retries, 100 ms base, 50 ms jitter, 5 s cap, 10 s budget.
    pub fn new() -> Self {
        Self::default()
    }

    /// Retries after the first attempt (0 disables retrying).
    #[must_use]
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The first backoff delay; each later one doubles.
    #[must_use]
    pub fn base_delay(mut self, base: Duration) -> Self {
        self.base = base;
        self
    }

    /// The largest random delay added to each backoff (uniform in `0..=jitter`).
    #[must_use]
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// The largest single backoff delay, jitter included.
    #[must_use]
    pub fn max_delay(mut self, max: Duration) -> Self {
        self.max_delay = max;
        self
    }

    /// The time budget of one call's retries, counted from the first failure: no retry starts
    /// after it (`None`: bounded only by `max_retries`).
    #[must_use]
    pub fn budget(mut self, budget: Option<Duration>) -> Self {
        self.budget = budget;
        self
    }

    /// Whether `store` is retried (default `true`; see the [module docs](RetryLayer)).
    #[must_use]
    pub fn retry_store(mut self, yes: bool) -> Self {
        self.retry_store = yes;
        self
    }

    /// Whether `remove` is retried (default `true`; see the [module docs](RetryLayer)).
    #[must_use]
    pub fn retry_remove(mut self, yes: bool) -> Self {
        self.retry_remove = yes;
        self
    }

    /// Checks the settings, as [`StoreBuilder::try_build`](crate::StoreBuilder::try_build)
    /// and [`Retry::try_new`] do.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] naming the setting: `base_delay` of zero while retrying
    /// (retries would hammer the backend back to back), `max_delay` below `base_delay`, or a
    /// `budget` of zero.
    pub fn validate(&self) -> Result<()> {
        if self.max_retries > 0 && self.base.is_zero() {
            return Err(Error::configuration(
                "base_delay",
                "must be longer than zero when max_retries > 0",
            ));
        }
        if self.max_delay < self.base {
            return Err(Error::configuration(
                "max_delay",
                format!("must be at least base_delay ({:?})", self.base),
            ));
        }
        if self.budget.is_some_and(|b| b.is_zero()) {
            return Err(Error::configuration(
                "budget",
                "must be longer than zero (None for no budget)",
            ));
        }
        Ok(())
    }

    /// The backoff delays of one call, before the budget applies: one per retry.
    pub fn delays(&self) -> Backoff {
        Backoff {
            config: *self,
            next: 0,
        }
    }
}

impl Layer for RetryLayer {
    fn layer(&self, inner: Arc<dyn KeyStore>) -> Arc<dyn KeyStore> {
        Arc::new(Retry::new(inner, *self))
    }

    fn validate(&self) -> Result<()> {
        RetryLayer::validate(self)
    }
}

/// The backoff delays of one call, as [`RetryLayer::delays`] makes them.
#[derive(Clone, Debug)]
pub struct Backoff {
    config: RetryLayer,
    next: u32,
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.next >= self.config.max_retries {
            return None;
        }
        let exp = self
            .config
            .base
            .saturating_mul(1u32.checked_shl(self.next).unwrap_or(u32::MAX));
        let jitter_nanos = u64::try_from(self.config.jitter.as_nanos()).unwrap_or(u64::MAX);
        let jitter = Duration::from_nanos(fastrand::u64(0..=jitter_nanos));
        self.next += 1;
        Some(exp.saturating_add(jitter).min(self.config.max_delay))
    }
}

/// The decorator [`RetryLayer`] makes; see the [module docs](RetryLayer).
#[derive(Debug)]
pub struct Retry<S> {
    inner: S,
    config: RetryLayer,
    /// The configuration error every call answers with, if `config` was invalid.
    refused: Option<Error>,
}

impl<S: KeyStore> Retry<S> {
    /// Wraps `inner` with `config`. With an invalid `config` (see [`RetryLayer::validate`])
    /// every call answers that configuration error without calling `inner`;
    /// [`try_new`](Self::try_new) reports it here instead.
    pub fn new(inner: S, config: RetryLayer) -> Self {
        Self {
            inner,
            config,
            refused: config.validate().err(),
        }
    }

    /// Wraps `inner` with `config`, checked first.
    ///
    /// # Errors
    ///
    /// What [`RetryLayer::validate`] returns.
    pub fn try_new(inner: S, config: RetryLayer) -> Result<Self> {
        config.validate()?;
        Ok(Self::new(inner, config))
    }

    /// The store this one wraps.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Runs `attempt` until it succeeds, fails for good or the backoff gives up, inside the
    /// call's [`CallContext`]: each attempt is counted in it before it starts and its error
    /// kind recorded when it fails, for the layers and the backend below.
    async fn run<T, Fut>(&self, enabled: bool, mut attempt: impl FnMut() -> Fut) -> Result<T>
    where
        Fut: Future<Output = Result<T>>,
    {
        if let Some(refused) = &self.refused {
            return Err(refused.clone());
        }
        let call = CallContext::current_or_new();
        let context = &call.clone();
        // Whether an attempt failed in a way that may have landed: then a later refusal
        // proves nothing about the call as a whole.
        let maybe_landed = &AtomicBool::new(false);
        let counted = move || {
            let running = context.enter_attempt();
            let fut = attempt();
            async move {
                let result = fut.await;
                drop(running);
                if let Err(e) = &result {
                    context.end_attempt(Some(e.kind()));
                    if !e.proves_not_applied() {
                        maybe_landed.store(true, Ordering::Relaxed);
                    }
                }
                result
            }
        };
        match call.scope(self.attempts(enabled, counted)).await {
            Err(e) if maybe_landed.load(Ordering::Relaxed) => Err(e.outcome_unknown()),
            other => other,
        }
    }

    async fn attempts<T, Fut>(&self, enabled: bool, mut attempt: impl FnMut() -> Fut) -> Result<T>
    where
        Fut: Future<Output = Result<T>>,
    {
        // Fast path: the first attempt runs without building the retry machinery.
        let first = match attempt().await {
            Err(e) if e.is_retryable() => e,
            done => return done,
        };
        // The budget clock starts at the first failure, so a successful call reads no clock.
        let budget = self.config.budget;
        let started = tokio::time::Instant::now();
        let max = if enabled { self.config.max_retries } else { 0 };
        let backoff = RetryLayer {
            max_retries: max,
            ..self.config
        }
        .delays();
        // backon sees the first attempt's error as its own first outcome, then takes over.
        let mut first = Some(first);
        let result = (move || {
            // `Err`: the first attempt's error, replayed; `Ok`: a new attempt.
            let step = match first.take() {
                Some(e) => Err(e),
                None => Ok(attempt()),
            };
            async move {
                match step {
                    Err(e) => Err(e),
                    Ok(next) => next.await,
                }
            }
        })
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(Error::is_retryable)
        .adjust(|_, delay| delay.filter(|d| budget.is_none_or(|b| started.elapsed() + *d <= b)))
        .await;
        // Only a retryable error can come back from `.retry` once it gave up on it.
        match result {
            Err(e) if e.is_retryable() => Err(e.exhausted()),
            other => other,
        }
    }
}

impl<S: KeyStore> fmt::Display for Retry<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Retry({})", self.inner)
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: KeyStore> KeyStore for Retry<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        self.run(true, || self.inner.get(key)).await
    }
    fn get_now(&self, key: &KeyName) -> Option<Result<StoredSecret>> {
        // A synchronous answer is passed up unless it is an error worth retrying: then `None`
        // sends the caller to `get`, which retries it.
        if self.refused.is_some() {
            return None;
        }
        self.inner
            .get_now(key)
            .filter(|answer| !matches!(answer, Err(e) if e.is_retryable()))
    }
    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        self.run(true, || self.inner.get_version(key, version))
            .await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        self.run(self.config.retry_store, || {
            self.inner.store(key, value.clone())
        })
        .await
    }
    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> Result<SecretMeta> {
        // Not retried: an attempt that landed, then timed out, would make the retry a
        // Conflict (the version moved), hiding the success.
        self.run(false, || {
            self.inner.store_if_version(key, value.clone(), expected)
        })
        .await
    }
    async fn remove(&self, key: &KeyName) -> Result<()> {
        let timed_out = AtomicBool::new(false);
        let timed_out = &timed_out;
        self.run(self.config.retry_remove, || async move {
            match self.inner.remove(key).await {
                Err(e) if e.kind() == ErrorKind::Timeout => {
                    timed_out.store(true, Ordering::Relaxed);
                    Err(e)
                }
                Err(e) if e.is_not_found() && timed_out.load(Ordering::Relaxed) => Ok(()),
                other => other,
            }
        })
        .await
    }
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        self.run(true, || self.inner.list(prefix)).await
    }
    async fn health(&self) -> Result<()> {
        self.run(true, || self.inner.health()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_stay_in_the_jitter_band() {
        let layer = RetryLayer::new();
        for _ in 0..200 {
            let delays: Vec<_> = layer.delays().collect();
            assert_eq!(delays.len(), 3);
            for (n, d) in delays.iter().enumerate() {
                let low = Duration::from_millis(100 << n);
                assert!(
                    *d >= low && *d <= low + Duration::from_millis(50),
                    "{n}: {d:?}"
                );
            }
        }
    }

    #[test]
    fn settings_are_validated_by_name() {
        assert!(RetryLayer::new().validate().is_ok());
        assert!(
            RetryLayer::new()
                .max_retries(0)
                .base_delay(Duration::ZERO)
                .validate()
                .is_ok()
        );
        for (layer, setting) in [
            (RetryLayer::new().base_delay(Duration::ZERO), "base_delay"),
            (
                RetryLayer::new()
                    .base_delay(Duration::from_secs(2))
                    .max_delay(Duration::from_secs(1)),
                "max_delay",
            ),
            (RetryLayer::new().budget(Some(Duration::ZERO)), "budget"),
        ] {
            let err = layer.validate().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Configuration, "{setting}");
            assert!(err.message().contains(setting), "{setting}: {err}");
            let store = Retry::new(crate::MemoryStore::new(), layer);
            let key = KeyName::new("k").unwrap();
            let refused = futures_block_on(store.get(&key)).unwrap_err();
            assert_eq!(refused.kind(), ErrorKind::Configuration, "{setting}");
            assert!(Retry::try_new(crate::MemoryStore::new(), layer).is_err());
        }
    }

    fn futures_block_on<F: Future>(fut: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(fut)
    }

    #[test]
    fn delays_are_capped() {
        let layer = RetryLayer::new()
            .max_retries(20)
            .max_delay(Duration::from_secs(1));
        assert!(layer.delays().all(|d| d <= Duration::from_secs(1)));
        assert_eq!(layer.delays().count(), 20);
    }
}
