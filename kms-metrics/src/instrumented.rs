//! [`Instrumented`]: the decorator that measures every operation, and [`MetricsLayer`].

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kms_core::{
    Capabilities, KeyName, KeyPrefix, KeyStore, Layer, Operation, Result, SecretMeta, SecretValue,
    StoredSecret, async_trait,
};
use tokio::time::Instant;
use tracing::Instrument;
use tracing::field::Empty;

use crate::failure_analysis::FailureRecorder;
use crate::families::{BackendMetrics, KmsMetrics, op_index};
use crate::key_age::KeyAge;

/// The tracing target of audit events.
pub const AUDIT_TARGET: &str = "kms::audit";

/// Configuration of the instrumentation decorator; a [`Layer`]. Get one from
/// [`KmsMetrics::layer`].
#[derive(Clone, Debug)]
pub struct MetricsLayer {
    metrics: KmsMetrics,
    probe_interval: Option<Duration>,
    audit: bool,
    recorder: Option<FailureRecorder>,
    key_age_window: Duration,
}

impl MetricsLayer {
    pub(crate) fn new(metrics: KmsMetrics) -> Self {
        Self {
            metrics,
            probe_interval: Some(Duration::from_secs(15)),
            audit: true,
            recorder: None,
            key_age_window: Duration::from_secs(3600),
        }
    }

    /// How often the background probe calls `health` (default 15 s); `None` turns it off, and
    /// `<p>_key_backend_up` then follows call outcomes only. The probe stops when the store is
    /// dropped.
    #[must_use]
    pub fn health_probe(mut self, interval: Option<Duration>) -> Self {
        self.probe_interval = interval;
        self
    }

    /// Whether to emit audit events on target [`AUDIT_TARGET`] (default on).
    #[must_use]
    pub fn audit(mut self, on: bool) -> Self {
        self.audit = on;
        self
    }

    /// Also record every operation in `recorder` (failure analysis). Off by default: it takes
    /// a short lock per operation.
    #[must_use]
    pub fn failure_recorder(mut self, recorder: FailureRecorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// The window of `<p>_key_age_seconds` (default 1 h).
    #[must_use]
    pub fn key_age_window(mut self, window: Duration) -> Self {
        self.key_age_window = window;
        self
    }

    /// Wraps `inner` directly.
    pub fn wrap<S: KeyStore>(&self, inner: S) -> Instrumented<S> {
        let m = self.metrics.backend(inner.backend());
        Instrumented {
            inner,
            m,
            board: self.metrics.families.health.clone(),
            audit: self.audit,
            recorder: self.recorder.clone(),
            key_age: KeyAge::new(self.key_age_window),
        }
    }
}

impl Layer for MetricsLayer {
    fn layer(&self, inner: Arc<dyn KeyStore>) -> Arc<dyn KeyStore> {
        let store: Arc<dyn KeyStore> = Arc::new(self.wrap(inner.clone()));
        if let Some(interval) = self.probe_interval {
            let backend = inner.backend();
            let gauge = self.metrics.backend(backend).up;
            crate::health::spawn_probe(
                Arc::downgrade(&inner),
                backend,
                interval,
                gauge,
                self.metrics.families.health.clone(),
            );
        }
        store
    }
}

/// The instrumentation decorator: counters, latency histogram, backend-up and key-age gauges,
/// a tracing span per operation, audit events. `Display` is `Instrumented(<inner>)`.
pub struct Instrumented<S> {
    inner: S,
    m: BackendMetrics,
    board: Arc<crate::health::HealthBoard>,
    audit: bool,
    recorder: Option<FailureRecorder>,
    key_age: KeyAge,
}

fn unix_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

impl<S: KeyStore> Instrumented<S> {
    fn record<T>(
        &self,
        op: Operation,
        key: Option<&KeyName>,
        result: &Result<T>,
        elapsed: Duration,
        span: &tracing::Span,
    ) {
        let i = op_index(op);
        self.m.duration[i].observe(elapsed.as_secs_f64());
        let error = result.as_ref().err();
        match error {
            None => {
                self.m.success[i].inc();
                if self.m.up.get() != 1 {
                    self.m.up.set(1);
                    self.board.update(self.m.backend, true, None, None);
                }
            }
            Some(e) => {
                self.m.failure[i].inc();
                self.m.error(op, e.kind());
                if e.kind().is_backend_unhealthy() {
                    self.m.up.set(0);
                    self.board
                        .update(self.m.backend, false, None, Some(e.kind()));
                }
            }
        }
        if !span.is_disabled() {
            span.record(
                "outcome",
                if error.is_none() {
                    "success"
                } else {
                    "failure"
                },
            );
            span.record("latency_us", elapsed.as_micros() as u64);
            if let Some(e) = error {
                span.record("error_kind", e.kind().as_str());
            }
        }
        let audited = matches!(op, Operation::Store | Operation::Remove) || error.is_some();
        if self.audit && audited {
            let key = key.map_or("", KeyName::as_str);
            match error {
                None => tracing::info!(
                    target: AUDIT_TARGET,
                    operation = op.as_str(),
                    key,
                    backend = self.m.backend,
                    outcome = "success",
                    timestamp_ms = unix_millis() as u64,
                    "key store audit"
                ),
                Some(e) => tracing::warn!(
                    target: AUDIT_TARGET,
                    operation = op.as_str(),
                    key,
                    backend = self.m.backend,
                    outcome = "failure",
                    error_kind = e.kind().as_str(),
                    timestamp_ms = unix_millis() as u64,
                    "key store audit"
                ),
            }
        }
        if let Some(recorder) = &self.recorder {
            recorder.record(op, key, error.map(|e| e.kind()), elapsed);
        }
    }
}

macro_rules! span_for {
    ($name:literal, $self:ident, $op:expr) => {
        tracing::info_span!(
            $name,
            backend = $self.m.backend,
            operation = $op,
            outcome = Empty,
            error_kind = Empty,
            latency_us = Empty
        )
    };
}

impl<S: KeyStore> fmt::Display for Instrumented<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Instrumented({})", self.inner)
    }
}

impl<S: KeyStore> fmt::Debug for Instrumented<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instrumented")
            .field("inner", &self.inner)
            .field("backend", &self.m.backend)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<S: KeyStore> KeyStore for Instrumented<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        let span = span_for!("kms.get", self, "get");
        let start = Instant::now();
        let result = self.inner.get(key).instrument(span.clone()).await;
        let end = Instant::now();
        self.record(Operation::Get, Some(key), &result, end - start, &span);
        if let Ok(secret) = &result
            && let Some(created) = secret.meta.created_at
        {
            self.key_age.observe(created, end, &self.m.key_age);
        }
        result
    }

    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        let span = span_for!("kms.get", self, "get");
        let start = Instant::now();
        let result = self
            .inner
            .get_version(key, version)
            .instrument(span.clone())
            .await;
        self.record(Operation::Get, Some(key), &result, start.elapsed(), &span);
        result
    }

    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        let span = span_for!("kms.store", self, "store");
        let start = Instant::now();
        let result = self.inner.store(key, value).instrument(span.clone()).await;
        self.record(Operation::Store, Some(key), &result, start.elapsed(), &span);
        result
    }

    async fn remove(&self, key: &KeyName) -> Result<()> {
        let span = span_for!("kms.remove", self, "remove");
        let start = Instant::now();
        let result = self.inner.remove(key).instrument(span.clone()).await;
        self.record(
            Operation::Remove,
            Some(key),
            &result,
            start.elapsed(),
            &span,
        );
        result
    }

    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        let span = span_for!("kms.list", self, "list");
        let start = Instant::now();
        let result = self.inner.list(prefix).instrument(span.clone()).await;
        self.record(Operation::List, None, &result, start.elapsed(), &span);
        result
    }

    async fn health(&self) -> Result<()> {
        let result = self.inner.health().await;
        self.m.up.set(i64::from(result.is_ok()));
        self.board.update(
            self.m.backend,
            result.is_ok(),
            None,
            result.as_ref().err().map(|e| e.kind()),
        );
        result
    }
}
