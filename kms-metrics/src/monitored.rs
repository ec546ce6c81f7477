//! [`Monitored`]: the backend-side decorator, made by [`BackendMonitor`](crate::BackendMonitor)
//! (which documents what it measures); where it goes in the stack is written once, in
//! [`kms_core::layers`].

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use kms_core::{
    CallContext, Capabilities, Error, ErrorKind, HealthSignal, KeyName, KeyPrefix, KeyStore,
    Operation, Result, SecretMeta, SecretValue, StoredSecret, async_trait,
};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::Notify;

use crate::clock::LatencyClock;
use crate::families::KmsMetrics;
use crate::health::HealthBoard;
use crate::histogram::LatencyHistogram;
use crate::key_age::KeyAgeGauge;
use crate::labels::{BackendLabels, DurationLabels, ErrorLabels, OperationLabels};
use crate::lazy_gauge::LazyGauge;
use crate::operations::{OPERATIONS, op_index};
use crate::status::{BACKEND_STATUSES, Status};
use crate::store_name::{StoreName, store_label};

/// The backend-side series of one operation.
struct BackendOpSeries {
    /// Indexed by [`Status`].
    counts: [Counter; 5],
    duration: LatencyHistogram,
}

/// One store's pre-resolved backend-side series.
struct BackendSide {
    backend: &'static str,
    store: Arc<str>,
    /// Indexed by [`op_index`].
    requests: [BackendOpSeries; 4],
    up: LazyGauge,
    key_age: KeyAgeGauge,
}

impl BackendSide {
    /// Resolves the series of the store `backend` named `store` (unnamed: the backend label);
    /// every status, and every retryable error kind of the retry counter, is created at 0.
    fn resolve(metrics: &KmsMetrics, backend: &'static str, store: Option<&StoreName>) -> Self {
        let store = store_label(store, backend);
        let f = &metrics.families;
        let requests = OPERATIONS.map(|op| {
            let operation = op.as_str();
            for kind in ErrorKind::ALL.iter().filter(|k| k.is_retryable()) {
                drop(f.backend_retries.get_or_create(&ErrorLabels {
                    operation,
                    backend,
                    store: store.clone(),
                    kind: kind.as_str(),
                }));
            }
            BackendOpSeries {
                counts: BACKEND_STATUSES.map(|status| {
                    f.backend_requests.get_or_create_owned(&OperationLabels {
                        operation,
                        backend,
                        store: store.clone(),
                        status,
                    })
                }),
                duration: f.backend_duration.get_or_create_owned(&DurationLabels {
                    operation,
                    backend,
                    store: store.clone(),
                }),
            }
        });
        let labels = BackendLabels {
            backend,
            store: store.clone(),
        };
        Self {
            backend,
            requests,
            up: LazyGauge::new(&f.backend_up, labels.clone()),
            key_age: f.key_age.get_or_create_owned(&labels),
            store,
        }
    }
}

/// The decorator [`BackendMonitor`](crate::BackendMonitor) makes. `Display` is
/// `Monitored(<inner>)`.
pub struct Monitored {
    inner: Arc<dyn KeyStore>,
    metrics: KmsMetrics,
    store_name: Option<StoreName>,
    side: BackendSide,
    board: Arc<HealthBoard>,
    clock: LatencyClock,
    probe_timeout: Duration,
    /// What the layers above read: written with `backend_up`.
    signal: HealthSignal,
    /// Wakes the probe when a call (or the breaker opening) finds the backend down, so the
    /// fast probing that notices its recovery starts at once.
    went_down: Arc<Notify>,
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
        self.store
            .record(self.op, Status::of(error.map(Error::kind)), self.start);
        self.store.answered(error);
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.store.record(self.op, Status::Abandoned, self.start);
        }
    }
}

impl Monitored {
    /// Wraps `inner`, resolving its series in `metrics` under the `store` label `store`
    /// (unnamed: the backend label); the probe is started apart, by
    /// [`spawn_probe`](Self::spawn_probe).
    pub(crate) fn new(
        inner: Arc<dyn KeyStore>,
        metrics: &KmsMetrics,
        store: Option<&StoreName>,
        probe_timeout: Duration,
        key_age_window: Duration,
        max_tracked_keys: usize,
        signal: HealthSignal,
    ) -> Self {
        let side = BackendSide::resolve(metrics, inner.backend(), store);
        side.key_age.configure(key_age_window, max_tracked_keys);
        Self {
            inner,
            metrics: metrics.clone(),
            store_name: store.cloned(),
            side,
            board: metrics.families.health.clone(),
            clock: LatencyClock::new(),
            probe_timeout,
            signal,
            went_down: Arc::default(),
        }
    }

    /// What the breaker's hook calls when the circuit opens (it has set `backend_up` to 0
    /// itself): the signal says down and the probe wakes.
    pub(crate) fn down_hook(&self) -> impl Fn() + Send + Sync + 'static {
        let (signal, went_down) = (self.signal.clone(), self.went_down.clone());
        move || {
            if !signal.is_down() {
                signal.mark_down();
                went_down.notify_one();
            }
        }
    }

    /// Calls the backend's `health` at once, then every `interval`, or every `while_down`
    /// while the backend is down (a call that finds it down wakes the probe), until the last
    /// `Arc` is dropped. Needs a tokio runtime (warns and does nothing without one).
    pub(crate) fn spawn_probe(self: &Arc<Self>, interval: Duration, while_down: Duration) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no tokio runtime: the kms backend health probe is not running");
            return;
        };
        let store: Weak<Self> = Arc::downgrade(self);
        let timeout = self.probe_timeout;
        runtime.spawn(async move {
            loop {
                let Some(monitored) = store.upgrade() else {
                    break;
                };
                let _ = monitored.probe(timeout).await;
                let wait = if monitored.signal.is_down() {
                    while_down
                } else {
                    interval
                };
                let went_down = monitored.went_down.clone();
                // Not held while waiting: the stack may be dropped meanwhile.
                drop(monitored);
                let _ = tokio::time::timeout(wait, went_down.notified()).await;
            }
        });
    }

    /// Starts one attempt. Below kms-core's retry layer every call runs in that layer's
    /// [`CallContext`], which has already counted this attempt: a number above 1 makes it a
    /// retry of the previous attempt's error. Calls outside a retry layer (no context, or
    /// none begun) are first attempts.
    fn call(&self, op: Operation) -> Call<'_> {
        let start = self.clock.raw();
        if let Some(call) = CallContext::current()
            && call.attempt() > 1
        {
            self.retried(op, &call);
        }
        Call {
            store: self,
            op,
            start,
            finished: false,
        }
    }

    /// Counts the attempt running in `call` as a retry: of the error the previous attempt
    /// failed with, numbered from 1 for the first retry, after the delay since that attempt
    /// ended.
    #[cold]
    #[inline(never)]
    fn retried(&self, op: Operation, call: &CallContext) {
        self.metrics.record_retry(
            op,
            self.side.backend,
            self.store_name.as_ref(),
            call.previous_error().unwrap_or(ErrorKind::Unavailable),
            call.attempt() - 1,
            call.previous_end()
                .map_or(Duration::ZERO, |end| end.elapsed()),
        );
    }

    /// Counts one attempt.
    fn record(&self, op: Operation, status: Status, start: u64) {
        let nanos = self.clock.nanos_between(start, self.clock.raw());
        let series = &self.side.requests[op_index(op)];
        series.counts[status as usize].inc();
        series.duration.observe_ns(nanos);
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
        let up = outcome.is_ok();
        self.side.up.set(i64::from(up));
        self.board
            .record(self.side.backend, &self.side.store, outcome, probe);
        if up {
            self.signal.mark_up();
        } else if !self.signal.is_down() {
            self.signal.mark_down();
            // A call found it down: probe now, then fast, to see it come back. (A probe that
            // found it down is followed by a fast one anyway.)
            if probe.is_none() {
                self.went_down.notify_one();
            }
        }
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
#[deny(clippy::missing_trait_methods)]
impl KeyStore for Monitored {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn get_now(&self, _key: &KeyName) -> Option<Result<StoredSecret>> {
        // Declined: every read that passes here is an attempt on the backend, counted in
        // `<p>_key_backend_requests_total` and feeding `backend_up` and the key age; an answer
        // at once would skip all of that. Nothing below (the timeout layer, a backend doing
        // I/O) answers synchronously, so `None`, which sends the caller to `get`, costs nothing.
        None
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
