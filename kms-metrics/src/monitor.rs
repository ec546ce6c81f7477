//! [`BackendMonitor`]: what the backend itself does, measured below the cache and beside the
//! circuit breaker; the layer of the [`Monitored`] decorator, and
//! [`KmsMetrics::backend_monitor`], which makes it.
//!
//! The service-side decorator ([`MetricsLayer`](crate::MetricsLayer)) sees what callers see:
//! cache hits, stale serves, an open circuit's instant refusals. None of those say whether the
//! backend answers. The monitor sits below retry (its position and why:
//! [`kms_core::layers`]), so every call it sees is an attempt that reached the backend, and
//! it probes the backend itself (`health()` every 15 s by default), not through the cache or
//! the breaker.
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
//! - its [`HealthSignal`] ([`health_signal`](BackendMonitor::health_signal)): down when
//!   `backend_up` goes to 0, up when it goes to 1, for the layers above to read (a cache
//!   then answers stale reads at once while the backend is down);
//! - `<p>_key_backend_retries_total{operation,kind}` and a `DEBUG` event on target
//!   `kms::retry` per retry: kms-core's [`RetryLayer`](kms_core::RetryLayer) above counts each
//!   attempt in the call's [`CallContext`](kms_core::CallContext), and an attempt after the
//!   first is a retry of the previous attempt's error. The retry layer needs no hook and the
//!   monitor does not hold it; calls that do not come through a retry layer (the health
//!   probe, a stack without one) are never retries.
//!
//! While the backend is down the probe runs every [`DEFAULT_DOWN_PROBE_INTERVAL`] (1 s)
//! instead of every 15 s, and a call that finds the backend down wakes it at once, so a
//! recovery is seen within about a second even when nothing else calls the backend (the
//! breaker open, the cache answering): `backend_up`, the health report and the signal follow
//! within one fast probe.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use kms_core::{CircuitBreakerHandle, CircuitState, HealthSignal, KeyStore, Layer};

use crate::families::KmsMetrics;
use crate::key_age::{DEFAULT_MAX_KEYS, DEFAULT_WINDOW};
use crate::monitored::Monitored;
use crate::store_name::StoreName;

impl KmsMetrics {
    /// A [`BackendMonitor`]: the backend-side instrumentation and health probe (just above the
    /// timeout layer, below retry).
    pub fn backend_monitor(&self) -> BackendMonitor {
        BackendMonitor::new(self.clone())
    }
}

/// Default probe interval.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(15);
/// Default bound on one probe.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default probe interval while the backend is down.
pub const DEFAULT_DOWN_PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The backend-side instrumentation and health probe; a [`Layer`]. Get one from
/// [`KmsMetrics::backend_monitor`] and put it below the retry layer, just above the timeout
/// layer (why: [`kms_core::layers`]):
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
    down_probe_interval: Duration,
    probe_timeout: Duration,
    breaker: Option<CircuitBreakerHandle>,
    key_age_window: Duration,
    max_tracked_keys: usize,
    signal: HealthSignal,
}

impl BackendMonitor {
    fn new(metrics: KmsMetrics) -> Self {
        Self {
            metrics,
            store: None,
            probe_interval: Some(DEFAULT_PROBE_INTERVAL),
            down_probe_interval: DEFAULT_DOWN_PROBE_INTERVAL,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            breaker: None,
            key_age_window: DEFAULT_WINDOW,
            max_tracked_keys: DEFAULT_MAX_KEYS,
            signal: HealthSignal::new(),
        }
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

    /// How often to probe while the backend is down (default 1 s; at most the probe
    /// interval): a recovery is then seen within this long, with no other call needed. A call
    /// that finds the backend down also wakes the probe at once. No effect with the probe off.
    #[must_use]
    pub fn probe_interval_while_down(mut self, interval: Duration) -> Self {
        self.down_probe_interval = interval;
        self
    }

    /// The signal this monitor writes: down when `<p>_key_backend_up` goes to 0 (a failed
    /// probe, an attempt that failed as unhealthy, the circuit opening), up when the backend
    /// answers a probe or a call. Hand it to the layers above that read one, such as
    /// `kms_cache::CacheLayer::health_signal`. Every store this layer wraps writes the same
    /// signal (clones share it), so use one monitor per backend, as with a breaker.
    pub fn health_signal(&self) -> HealthSignal {
        self.signal.clone()
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
        let monitored = Arc::new(Monitored::new(
            inner,
            &self.metrics,
            self.store.as_ref(),
            self.probe_timeout,
            self.key_age_window,
            self.max_tracked_keys,
            self.signal.clone(),
        ));
        if let Some(handle) = &self.breaker {
            let record = self
                .metrics
                .circuit_state_recorder_for(backend, self.store.as_ref());
            record(handle.state());
            let down = monitored.down_hook();
            handle.on_state_change(move |state| {
                record(state);
                if state == CircuitState::Open {
                    down();
                }
            });
        }
        if let Some(interval) = self.probe_interval {
            monitored.spawn_probe(interval, self.down_probe_interval.min(interval));
        }
        monitored
    }
}

impl fmt::Debug for BackendMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendMonitor")
            .field("store", &self.store)
            .field("probe_interval", &self.probe_interval)
            .field("down_probe_interval", &self.down_probe_interval)
            .field("probe_timeout", &self.probe_timeout)
            .field("circuit_breaker", &self.breaker.is_some())
            .field("key_age_window", &self.key_age_window)
            .finish_non_exhaustive()
    }
}

impl Layer for BackendMonitor {
    fn layer(&self, inner: Arc<dyn KeyStore>) -> Arc<dyn KeyStore> {
        self.wrap(inner)
    }
}
