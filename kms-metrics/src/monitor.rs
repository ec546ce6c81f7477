//! [`BackendMonitor`]: what the backend itself does, measured below the cache and beside the
//! circuit breaker.
//!
//! The service-side decorator ([`MetricsLayer`](crate::MetricsLayer)) sees what callers see:
//! cache hits, stale serves, an open circuit's instant refusals. None of those say whether the
//! backend answers. The monitor sits right above the timeout layer (below retry and breaker),
//! so every call it sees is an attempt that reached the backend, and it probes the backend
//! itself on an interval, not through the cache or the breaker:
//!
//! ```text
//! metrics → cache → breaker → retry → BackendMonitor → timeout → backend
//!                                          └── probe: backend.health() every 15 s
//! ```
//!
//! It feeds, per `{backend, store}`:
//!
//! - `<p>_key_backend_up`: 1 when the backend answered its last probe or call (a not-found or
//!   a permission error is an answer), 0 when either failed the way a circuit breaker counts
//!   (timeout, unavailable, rate limited) or the probe failed at all, and 0 while the circuit
//!   is open (with [`circuit_breaker`](BackendMonitor::circuit_breaker)). No sample until
//!   the first probe or call.
//! - `<p>_key_backend_requests_total{operation,status}` and
//!   `<p>_key_backend_request_duration_seconds{operation}`: each attempt once, retries
//!   included; an attempt dropped by its caller is `abandoned`.
//! - `<p>_key_age_seconds`: the age of the oldest current key version (see `key_age.rs`).
//! - the health report's entry: up, probe latency, last error kind and message (cleared when
//!   the backend answers again), circuit state;
//! - with [`retry`](BackendMonitor::retry) (the monitor then holds the retry layer instead of
//!   a separate one above it), `<p>_key_backend_retries_total` and a `DEBUG` event per retry.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use kms_core::{
    Capabilities, CircuitBreakerHandle, Error, ErrorKind, KeyName, KeyPrefix, KeyStore, Layer,
    Operation, Result, Retry, RetryLayer, SecretMeta, SecretValue, StoredSecret, async_trait,
};

use crate::clock::LatencyClock;
use crate::families::{BackendSide, KmsMetrics, op_index};
use crate::health::HealthBoard;
use crate::key_age::{DEFAULT_MAX_KEYS, DEFAULT_WINDOW};
use crate::retries::{Retries, end_attempt, start_attempt};
use crate::status::Status;
use crate::store_name::StoreName;

/// Default probe interval.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(15);
/// Default bound on one probe.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The backend-side instrumentation and health probe; a [`Layer`]. Get one from
/// [`KmsMetrics::backend_monitor`] and put it just above the timeout layer:
///
/// ```
/// use std::time::Duration;
/// use kms_core::{CircuitBreakerLayer, MemoryStore, RetryLayer, StoreBuilder, TimeoutLayer};
/// use kms_metrics::KmsMetrics;
/// use kms_metrics::prometheus_client::registry::Registry;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), kms_core::Error> {
/// let mut registry = Registry::default();
/// let metrics = KmsMetrics::register(&mut registry);
/// let eu = metrics.store_name("vault-eu")?;
/// let breaker = CircuitBreakerLayer::new();
/// let store = StoreBuilder::new(MemoryStore::new())
///     .layer(metrics.layer().store(eu.clone()))
///     .layer(breaker.clone())
///     .layer(RetryLayer::new())
///     .layer(
///         metrics
///             .backend_monitor()
///             .store(eu)
///             .circuit_breaker(&breaker.handle())
///             .probe_interval(Some(Duration::from_secs(15))),
///     )
///     .layer(TimeoutLayer::new())
///     .build();
/// assert_eq!(store.to_string(), "Instrumented(CircuitBreaker(Retry(Monitored(Timeout(Memory)))))");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct BackendMonitor {
    metrics: KmsMetrics,
    store: Option<StoreName>,
    probe_interval: Option<Duration>,
    probe_timeout: Duration,
    breaker: Option<CircuitBreakerHandle>,
    key_age_window: Duration,
    max_tracked_keys: usize,
    retry: Option<RetryLayer>,
}

impl BackendMonitor {
    pub(crate) fn new(metrics: KmsMetrics) -> Self {
        Self {
            metrics,
            store: None,
            probe_interval: Some(DEFAULT_PROBE_INTERVAL),
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            breaker: None,
            key_age_window: DEFAULT_WINDOW,
            max_tracked_keys: DEFAULT_MAX_KEYS,
            retry: None,
        }
    }

    /// Puts `retry` inside this layer so every retry it makes is counted: the layer then
    /// builds `Retries(Retry(Monitored(…)))` (see [`Retries`](crate::Retries)), and replaces a
    /// separate `RetryLayer` in the stack.
    #[must_use]
    pub fn retry(mut self, retry: RetryLayer) -> Self {
        self.retry = Some(retry);
        self
    }

    /// The `store` label (default: the backend label). Give every store of one backend type
    /// its own name, the same as its [`MetricsLayer::store`](crate::MetricsLayer::store).
    #[must_use]
    pub fn store(mut self, name: StoreName) -> Self {
        self.store = Some(name);
        self
    }

    /// How often to call the backend's `health` (default 15 s, first at once); `None` turns
    /// the probe off and `<p>_key_backend_up` then follows backend calls only. The probe stops
    /// when the stack is dropped.
    #[must_use]
    pub fn probe_interval(mut self, interval: Option<Duration>) -> Self {
        self.probe_interval = interval;
        self
    }

    /// The longest one probe may take before it counts as a timeout (default 5 s).
    #[must_use]
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    /// Follows this circuit breaker: exports `<p>_circuit_breaker_state{backend,store}`, puts
    /// the state in the health report and sets `<p>_key_backend_up` to 0 when it opens.
    #[must_use]
    pub fn circuit_breaker(mut self, handle: &CircuitBreakerHandle) -> Self {
        self.breaker = Some(handle.clone());
        self
    }

    /// Keys the backend has not returned or written for this long leave `<p>_key_age_seconds`
    /// (default 1 h; keep it above the cache TTL).
    #[must_use]
    pub fn key_age_window(mut self, window: Duration) -> Self {
        self.key_age_window = window;
        self
    }

    /// The most keys `<p>_key_age_seconds` tracks (default 10,000).
    #[must_use]
    pub fn max_tracked_keys(mut self, keys: usize) -> Self {
        self.max_tracked_keys = keys;
        self
    }

    /// Wraps `inner` and starts the probe (if on, and a tokio runtime is running).
    pub fn wrap(&self, inner: Arc<dyn KeyStore>) -> Arc<Monitored> {
        let backend = inner.backend();
        let side = self.metrics.backend_side(backend, self.store.as_ref());
        side.key_age
            .configure(self.key_age_window, self.max_tracked_keys);
        if let Some(handle) = &self.breaker {
            let record = self
                .metrics
                .circuit_state_recorder_for(backend, self.store.as_ref());
            record(handle.state());
            handle.on_state_change(record);
        }
        let monitored = Arc::new(Monitored {
            inner,
            metrics: self.metrics.clone(),
            store_name: self.store.clone(),
            side,
            board: self.metrics.families.health.clone(),
            clock: LatencyClock::new(),
            probe_timeout: self.probe_timeout,
        });
        if let Some(interval) = self.probe_interval {
            spawn_probe(Arc::downgrade(&monitored), interval, self.probe_timeout);
        }
        monitored
    }
}

impl fmt::Debug for BackendMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendMonitor")
            .field("store", &self.store)
            .field("probe_interval", &self.probe_interval)
            .field("probe_timeout", &self.probe_timeout)
            .field("circuit_breaker", &self.breaker.is_some())
            .field("key_age_window", &self.key_age_window)
            .finish_non_exhaustive()
    }
}

impl Layer for BackendMonitor {
    fn layer(&self, inner: Arc<dyn KeyStore>) -> Arc<dyn KeyStore> {
        let monitored: Arc<dyn KeyStore> = self.wrap(inner);
        match self.retry {
            None => monitored,
            Some(retry) => Arc::new(Retries {
                inner: Arc::new(Retry::new(monitored, retry)),
            }),
        }
    }
}

fn spawn_probe(store: Weak<Monitored>, interval: Duration, timeout: Duration) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("no tokio runtime: the kms backend health probe is not running");
        return;
    };
    runtime.spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(store) = store.upgrade() else { break };
            let _ = store.probe(timeout).await;
        }
    });
}

/// The decorator [`BackendMonitor`] makes. `Display` is `Monitored(<inner>)`.
pub struct Monitored {
    inner: Arc<dyn KeyStore>,
    metrics: KmsMetrics,
    store_name: Option<StoreName>,
    side: BackendSide,
    board: Arc<HealthBoard>,
    clock: LatencyClock,
    probe_timeout: Duration,
}

/// One backend call in progress: records `abandoned` if dropped before it finished.
struct Call<'a> {
    store: &'a Monitored,
    op: Operation,
    start: u64,
    finished: bool,
}

impl Call<'_> {
    fn finish<T>(mut self, result: &Result<T>) {
        self.finished = true;
        let error = result.as_ref().err();
        let end = self
            .store
            .record(self.op, Status::of(error.map(Error::kind)), self.start);
        end_attempt(error.map(Error::kind), end);
        self.store.answered(error);
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.store.record(self.op, Status::Abandoned, self.start);
        }
    }
}

impl Monitored {
    fn call(&self, op: Operation) -> Call<'_> {
        let start = self.clock.raw();
        if let Some(before) = start_attempt()
            && before.started > 0
        {
            self.metrics.record_retry(
                op,
                self.side.backend,
                self.store_name.as_ref(),
                before.last_error.unwrap_or(ErrorKind::Unavailable),
                before.started,
                Duration::from_nanos(self.clock.nanos_between(before.last_end, start)),
            );
        }
        Call {
            store: self,
            op,
            start,
            finished: false,
        }
    }

    /// Counts one attempt; returns the raw clock reading at its end.
    fn record(&self, op: Operation, status: Status, start: u64) -> u64 {
        let end = self.clock.raw();
        let nanos = self.clock.nanos_between(start, end);
        let series = &self.side.requests[op_index(op)];
        series.counts[status as usize].inc();
        series.duration.observe_ns(nanos);
        end
    }

    /// What a finished call says about the backend: it answered (even "not found"), or it
    /// failed the way a circuit breaker counts.
    fn answered(&self, error: Option<&Error>) {
        match error {
            Some(e) if e.kind().is_backend_unhealthy() => self.set_up(Err(e), None),
            _ => self.set_up(Ok(()), None),
        }
    }

    fn set_up(&self, outcome: std::result::Result<(), &Error>, probe: Option<Duration>) {
        self.side.up.set(i64::from(outcome.is_ok()));
        self.board
            .record(self.side.backend, &self.side.store, outcome, probe);
    }

    /// Calls the backend's `health` once, bounded by `timeout`, and records the outcome.
    async fn probe(&self, timeout: Duration) -> Result<()> {
        let start = self.clock.raw();
        let outcome = match tokio::time::timeout(timeout, self.inner.health()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!("the health probe did not answer within {timeout:?}"),
            )
            .with_backend(self.side.backend)),
        };
        let latency = Duration::from_nanos(self.clock.nanos_between(start, self.clock.raw()));
        self.set_up(outcome.as_ref().map(|_| ()), Some(latency));
        outcome
    }
}

impl fmt::Display for Monitored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Monitored({})", self.inner)
    }
}

impl fmt::Debug for Monitored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Monitored")
            .field("inner", &self.inner)
            .field("backend", &self.side.backend)
            .field("store", &&*self.side.store)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl KeyStore for Monitored {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        let call = self.call(Operation::Get);
        let result = self.inner.get(key).await;
        call.finish(&result);
        match &result {
            Ok(secret) => {
                if let Some(created) = secret.meta.created_at {
                    self.side.key_age.current(key, created, SystemTime::now());
                }
            }
            Err(e) if e.is_not_found() => self.side.key_age.removed(key),
            Err(_) => {}
        }
        result
    }

    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        let call = self.call(Operation::Get);
        let result = self.inner.get_version(key, version).await;
        call.finish(&result);
        result
    }

    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        let call = self.call(Operation::Store);
        let result = self.inner.store(key, value).await;
        call.finish(&result);
        if let Ok(meta) = &result {
            let now = SystemTime::now();
            self.side
                .key_age
                .current(key, meta.created_at.unwrap_or(now), now);
        }
        result
    }
    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> Result<SecretMeta> {
        let call = self.call(Operation::Store);
        let result = self.inner.store_if_version(key, value, expected).await;
        call.finish(&result);
        if let Ok(meta) = &result {
            let now = SystemTime::now();
            self.side
                .key_age
                .current(key, meta.created_at.unwrap_or(now), now);
        }
        result
    }

    async fn remove(&self, key: &KeyName) -> Result<()> {
        let call = self.call(Operation::Remove);
        let result = self.inner.remove(key).await;
        call.finish(&result);
        if result.is_ok() || result.as_ref().is_err_and(Error::is_not_found) {
            self.side.key_age.removed(key);
        }
        result
    }

    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        let call = self.call(Operation::List);
        let result = self.inner.list(prefix).await;
        call.finish(&result);
        result
    }

    async fn health(&self) -> Result<()> {
        self.probe(self.probe_timeout).await
    }
}
