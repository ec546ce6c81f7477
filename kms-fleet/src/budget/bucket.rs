//! [`RequestBudget`]: a token bucket of backend calls per second.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kms_core::{Error, ErrorKind, Result};
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::metrics::FleetMetrics;

/// AWS Secrets Manager's quota: `GetSecretValue` and `DescribeSecret` together, per account
/// and Region, shared by every process of the account (not adjustable).
pub const AWS_SECRETS_MANAGER_RPS: f64 = 10_000.0;

/// The default longest a call waits for a token before it is refused.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(2);

/// A per-store budget of backend calls: `rate` tokens a second, at most `burst` saved up.
///
/// Cheap to clone; clones share the bucket, so every layer built from one budget (or every
/// store of one backend account in a process) draws from the same tokens.
///
/// # Sharing a quota across a fleet
///
/// A backend's quota is usually per account, shared by every process: AWS Secrets Manager
/// allows [`AWS_SECRETS_MANAGER_RPS`] `GetSecretValue` + `DescribeSecret` calls per second per
/// account and Region. A process's budget is its share: the quota divided by the number of
/// processes that may run at once, with some headroom (for example `10_000 × 0.8 / 400 = 20`
/// a second for 400 instances). [`RequestBudget::share_of`] computes it. The burst bounds how
/// far a process may run ahead of its rate; for a fleet started together, each process's
/// saved-up burst is spent together, so keep it small, and
/// [`cold_start_spread`](RequestBudgetBuilder::cold_start_spread) starts each bucket with a random fill so
/// the fleet's first calls are spread over one token's time instead of landing at once.
#[derive(Clone)]
pub struct RequestBudget {
    inner: Arc<Inner>,
}

struct Inner {
    store: String,
    rate: f64,
    burst: f64,
    max_wait: Duration,
    state: Mutex<Bucket>,
    granted: AtomicU64,
    metrics: Option<FleetMetrics>,
}

struct Bucket {
    /// Tokens now; negative while calls wait for tokens they have reserved.
    tokens: f64,
    at: Instant,
}

impl fmt::Debug for RequestBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBudget")
            .field("store", &self.inner.store)
            .field("rate", &self.inner.rate)
            .field("burst", &self.inner.burst)
            .field("max_wait", &self.inner.max_wait)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`RequestBudget`]; see [`RequestBudget::builder`].
#[derive(Clone, Debug)]
pub struct RequestBudgetBuilder {
    store: String,
    rate: f64,
    burst: Option<f64>,
    max_wait: Duration,
    spread: bool,
    initial: Option<f64>,
    metrics: Option<FleetMetrics>,
}

impl RequestBudget {
    /// A budget of `rate` calls a second for the store named `store` (a metric label).
    pub fn builder(store: impl Into<String>, rate: f64) -> RequestBudgetBuilder {
        RequestBudgetBuilder {
            store: store.into(),
            rate,
            burst: None,
            max_wait: DEFAULT_MAX_WAIT,
            spread: false,
            initial: None,
            metrics: None,
        }
    }

    /// One process's share of a `quota` (calls a second for the whole account) among
    /// `processes`, keeping `headroom` (in `[0, 1)`) of it unused for everything else that
    /// calls the backend (consoles, rotation functions).
    pub fn share_of(quota: f64, processes: u32, headroom: f64) -> f64 {
        quota * (1.0 - headroom.clamp(0.0, 0.99)) / f64::from(processes.max(1))
    }

    /// Calls a second.
    pub fn rate(&self) -> f64 {
        self.inner.rate
    }

    /// Most tokens saved up.
    pub fn burst(&self) -> f64 {
        self.inner.burst
    }

    /// Tokens now (negative while calls wait for reserved tokens).
    pub fn remaining(&self) -> f64 {
        let mut bucket = self.inner.state.lock();
        self.refill(&mut bucket, Instant::now());
        bucket.tokens
    }

    /// Tokens granted so far (calls let through).
    pub fn granted(&self) -> u64 {
        self.inner.granted.load(Ordering::Relaxed)
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.inner.rate).min(self.inner.burst);
        bucket.at = now;
    }

    /// Takes one token, waiting for it at most the budget's `max_wait`.
    ///
    /// The token is reserved before the wait, so calls are let through in order and at the
    /// rate, however many wait; a caller that leaves while waiting gives its token up (the
    /// budget errs on the side of fewer calls).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::RateLimited`] when no token would come within the wait: marked as never
    /// reaching the backend and as already retried (a retry layer above does not try again
    /// against an empty budget), and a kind the cache serves a stale value for.
    pub async fn acquire(&self) -> Result<()> {
        let now = Instant::now();
        let wait = {
            let mut bucket = self.inner.state.lock();
            self.refill(&mut bucket, now);
            if bucket.tokens >= 1.0 {
                bucket.tokens -= 1.0;
                Duration::ZERO
            } else {
                let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / self.inner.rate);
                if wait > self.inner.max_wait {
                    let tokens = bucket.tokens;
                    drop(bucket);
                    self.record(tokens, false, true);
                    return Err(Error::new(
                        ErrorKind::RateLimited,
                        format!(
                            "request budget of {} calls/s for '{}' is spent; the next token is {:?} away, more than the {:?} a call may wait",
                            self.inner.rate, self.inner.store, wait, self.inner.max_wait
                        ),
                    )
                    .before_backend()
                    .exhausted());
                }
                bucket.tokens -= 1.0;
                wait
            }
        };
        self.inner.granted.fetch_add(1, Ordering::Relaxed);
        if wait.is_zero() {
            self.record(self.peek(), false, false);
        } else {
            self.record(self.peek(), true, false);
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    fn peek(&self) -> f64 {
        self.inner.state.lock().tokens
    }

    fn record(&self, tokens: f64, waited: bool, refused: bool) {
        if let Some(metrics) = &self.inner.metrics {
            metrics.budget(&self.inner.store, tokens, waited, refused);
        }
    }

    /// The store label.
    pub fn store(&self) -> &str {
        &self.inner.store
    }
}

impl RequestBudgetBuilder {
    /// Most tokens saved up (default: one second's worth, at least 1).
    #[must_use]
    pub fn burst(mut self, burst: f64) -> Self {
        self.burst = Some(burst);
        self
    }

    /// The longest a call waits for a token (default [`DEFAULT_MAX_WAIT`]); set it within
    /// the callers' deadline.
    #[must_use]
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// Start with a random fill in `[0, burst)` instead of a full bucket (default off): for a
    /// fleet started together.
    #[must_use]
    pub fn cold_start_spread(mut self, spread: bool) -> Self {
        self.spread = spread;
        self
    }

    /// Start with this many tokens (clamped to `[0, burst]`) instead of a full bucket: a
    /// fleet whose instances know their ordinal `i` of `n` can start at `i / n` tokens, so
    /// their first calls are spread evenly over one token's time. Overrides
    /// [`cold_start_spread`](Self::cold_start_spread).
    #[must_use]
    pub fn initial_tokens(mut self, tokens: f64) -> Self {
        self.initial = Some(tokens);
        self
    }

    /// Count waits, refusals and the remaining tokens in these families.
    #[must_use]
    pub fn metrics(mut self, metrics: FleetMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Builds the budget.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] naming `fleet.budget.rate` (not a positive finite number),
    /// `fleet.budget.burst` (below 1 or not finite) or `fleet.budget.max_wait`.
    pub fn build(self) -> Result<RequestBudget> {
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err(Error::configuration(
                "fleet.budget.rate",
                "must be a positive number of calls a second",
            ));
        }
        let burst = self.burst.unwrap_or(self.rate.max(1.0));
        if !(burst.is_finite() && burst >= 1.0) {
            return Err(Error::configuration(
                "fleet.budget.burst",
                "must be at least 1",
            ));
        }
        if self.max_wait > Duration::from_secs(3600) {
            return Err(Error::configuration(
                "fleet.budget.max_wait",
                "must be at most an hour",
            ));
        }
        let tokens = if let Some(initial) = self.initial {
            if !initial.is_finite() {
                return Err(Error::configuration(
                    "fleet.budget.initial_tokens",
                    "must be a finite number",
                ));
            }
            initial.clamp(0.0, burst)
        } else if self.spread {
            fastrand::f64() * burst
        } else {
            burst
        };
        Ok(RequestBudget {
            inner: Arc::new(Inner {
                store: self.store,
                rate: self.rate,
                burst,
                max_wait: self.max_wait,
                state: Mutex::new(Bucket {
                    tokens,
                    at: Instant::now(),
                }),
                granted: AtomicU64::new(0),
                metrics: self.metrics,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_then_refuses() {
        let budget = RequestBudget::builder("t", 10.0)
            .burst(2.0)
            .max_wait(Duration::from_millis(150))
            .build()
            .unwrap();
        budget.acquire().await.unwrap();
        budget.acquire().await.unwrap();
        let start = Instant::now();
        budget.acquire().await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(100));
        // Two more reserved would need 100 ms and 200 ms from here; the second is refused.
        let b = budget.clone();
        let first = tokio::spawn(async move { b.acquire().await });
        tokio::task::yield_now().await;
        let err = budget.acquire().await;
        assert!(first.await.unwrap().is_ok());
        let err = err.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert!(err.kind().serves_stale());
        assert_eq!(budget.granted(), 4);
    }

    #[test]
    fn bad_settings_name_themselves() {
        let e = RequestBudget::builder("t", 0.0).build().unwrap_err();
        assert!(e.to_string().contains("fleet.budget.rate"), "{e}");
        let e = RequestBudget::builder("t", 1.0)
            .burst(0.5)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("fleet.budget.burst"), "{e}");
        assert!((RequestBudget::share_of(10_000.0, 400, 0.2) - 20.0).abs() < 1e-9);
    }
}
