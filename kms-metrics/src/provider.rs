//! [`InstrumentedProvider`]: the instrumentation decorator of a [`CryptoProvider`], and
//! [`KmsMetrics::instrument_provider`], which makes it.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use kms_core::{
    CryptoOperation, CryptoProvider, DataKey, EncryptionContext, Error, ErrorKind, Result,
    SecretValue, async_trait,
};
use tracing::field::Empty;

use crate::audit::{AUDIT_TARGET, unix_millis};
use crate::clock::LatencyClock;
use crate::failure_analysis::FailureRecorder;
use crate::families::{Families, KmsMetrics};
use crate::health::HealthBoard;
use crate::labels::BackendLabels;
use crate::lazy_gauge::LazyGauge;
use crate::operations::crypto_index;
use crate::series::OpSeries;
use crate::span::{record_span, timed};
use crate::status::Status;

impl KmsMetrics {
    /// Wraps a [`CryptoProvider`] (AWS KMS, Vault Transit, `LocalKeyProvider`, ...) so that
    /// every `encrypt`, `decrypt` and `generate_data_key` is counted in
    /// `<p>_key_operations_total`, `<p>_key_operation_errors_total` and
    /// `<p>_key_operation_duration_seconds` with `backend` = [`CryptoProvider::provider`], sets
    /// `<p>_key_backend_up{backend}` from the outcomes, gets a `kms.<operation>` span and, on
    /// failure, an audit event. The result is itself a `CryptoProvider`: hand it to the
    /// envelope decorator in place of the bare provider. Put it in an `Arc` and call
    /// [`InstrumentedProvider::spawn_probe`] for a health probe.
    pub fn instrument_provider<P: CryptoProvider>(&self, provider: P) -> InstrumentedProvider<P> {
        InstrumentedProvider::new(self, provider)
    }
}

/// One provider's pre-resolved series.
struct ProviderMetrics {
    provider: &'static str,
    store: Arc<str>,
    /// Indexed by [`crypto_index`].
    ops: [OpSeries; 3],
    up: LazyGauge,
    families: Arc<Families>,
}

impl ProviderMetrics {
    /// Resolves the series of `provider` (its `store` label is the provider label).
    fn resolve(metrics: &KmsMetrics, provider: &'static str) -> Self {
        let store: Arc<str> = Arc::from(provider);
        let families = metrics.families.clone();
        Self {
            provider,
            ops: CryptoOperation::ALL
                .map(|o| OpSeries::resolve(&families, o.as_str(), provider, &store)),
            up: LazyGauge::new(
                &families.backend_up,
                BackendLabels {
                    backend: provider,
                    store: store.clone(),
                },
            ),
            store,
            families,
        }
    }

    /// Counts a failure by kind (the failure path may look up its label set).
    fn error(&self, op: CryptoOperation, kind: ErrorKind) {
        self.families
            .count_error(op.as_str(), self.provider, &self.store, kind);
    }

    fn board(&self) -> &HealthBoard {
        &self.families.health
    }
}

/// A [`CryptoProvider`] that measures every call of the provider it wraps; build one with
/// [`KmsMetrics::instrument_provider`].
///
/// Per call it records, with `operation` = `encrypt` | `decrypt` | `generate_data_key` and
/// `backend` = the inner provider's [`provider()`](CryptoProvider::provider) label:
///
/// - `<p>_key_operations_total{operation,backend,status}` and
///   `<p>_key_operation_duration_seconds{operation,backend}` (series resolved once, when the
///   provider is wrapped);
/// - `<p>_key_operation_errors_total{operation,backend,kind}` on failure;
/// - `<p>_key_backend_up{backend}`: 0 after a call that failed the way a circuit breaker
///   counts (timeout, unavailable, rate limited), 1 after any other answer, and the same from
///   the health probe ([`spawn_probe`](Self::spawn_probe)); the provider's entry in the health
///   report, with the last error's message;
/// - a call dropped before it finished counts as `status="abandoned"`;
/// - a span `kms.encrypt` / `kms.decrypt` / `kms.generate_data_key` with `backend`,
///   `operation`, `outcome`, `error_kind` and `latency_us`;
/// - on failure, a `WARN` audit event on target [`AUDIT_TARGET`] with operation, backend,
///   outcome, error kind and timestamp.
///
/// Nothing it records holds plaintext, ciphertext bytes or the encryption context (the context
/// is not secret, but it often names tenants or keys and would make labels unbounded).
/// `Display` is `Instrumented(<inner>)`.
pub struct InstrumentedProvider<P> {
    inner: P,
    m: ProviderMetrics,
    clock: LatencyClock,
    audit: bool,
    recorder: Option<(FailureRecorder, Option<String>)>,
}

impl<P: CryptoProvider> InstrumentedProvider<P> {
    fn new(metrics: &KmsMetrics, inner: P) -> Self {
        Self {
            m: ProviderMetrics::resolve(metrics, inner.provider()),
            inner,
            clock: LatencyClock::new(),
            audit: true,
            recorder: None,
        }
    }

    /// Also records every call in `recorder` (failure analysis: the encrypt, decrypt and
    /// generate records of the encryption metrics summary), with the key id taken from the
    /// encryption-context entry named `key_id_field` when there is one (the context is never
    /// exported as a metric label; the summary is a report that names keys).
    #[must_use]
    pub fn failure_recorder(
        mut self,
        recorder: FailureRecorder,
        key_id_field: Option<&str>,
    ) -> Self {
        self.recorder = Some((recorder, key_id_field.map(str::to_owned)));
        self
    }

    fn feed_recorder(
        &self,
        op: CryptoOperation,
        context: &EncryptionContext,
        failure: Option<ErrorKind>,
        nanos: u64,
    ) {
        if let Some((recorder, field)) = &self.recorder {
            let key_id = field
                .as_deref()
                .and_then(|f| context.iter().find(|(k, _)| *k == f).map(|(_, v)| v));
            recorder.record_crypto(op, key_id, failure, Duration::from_nanos(nanos));
        }
    }

    /// Whether to emit audit events on failures (default on).
    #[must_use]
    pub fn audit(mut self, on: bool) -> Self {
        self.audit = on;
        self
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// Starts a health probe that asks the provider for a data key every `interval` (as
    /// a KMS readiness check does: `generate_data_key` exercises credentials, key policy
    /// and the network in one call), each bounded by `timeout`, feeding
    /// `<p>_key_backend_up{backend}` and the health report. The first probe runs at once; the
    /// probe stops when the last `Arc` is dropped. Needs a tokio runtime (warns and does
    /// nothing without one). Probes are not counted as operations. Each costs one KMS request
    /// (5,760 a day at the 15 s default).
    pub fn spawn_probe(self: &Arc<Self>, interval: Duration, timeout: Duration) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no tokio runtime: the kms provider health probe is not running");
            return;
        };
        let this: Weak<Self> = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(provider) = this.upgrade() else {
                    break;
                };
                provider.probe(timeout).await;
            }
        });
    }

    /// One probe: a data key generation bounded by `timeout`.
    async fn probe(&self, timeout: Duration) {
        let context = EncryptionContext::new().with("purpose", "kms-health-probe");
        let start = self.clock.raw();
        let outcome =
            match tokio::time::timeout(timeout, self.inner.generate_data_key(&context)).await {
                Ok(outcome) => outcome.map(drop),
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!("the health probe did not answer within {timeout:?}"),
                )
                .with_backend(self.m.provider)),
            };
        let latency = Duration::from_nanos(self.clock.nanos_between(start, self.clock.raw()));
        self.m.up.set(i64::from(outcome.is_ok()));
        self.m.board().record(
            self.m.provider,
            &self.m.store,
            outcome.as_ref().map(|_| ()),
            Some(latency),
        );
    }

    #[inline]
    fn record<T>(
        &self,
        op: CryptoOperation,
        result: &Result<T>,
        nanos: u64,
        span: Option<&tracing::Span>,
    ) {
        let series = &self.m.ops[crypto_index(op)];
        let error = result.as_ref().err();
        let kind = error.map(Error::kind);
        series.observe(Status::of(kind), nanos);
        if let Some(kind) = kind {
            self.failed(op, kind);
        }
        let down = error.filter(|e| e.kind().is_backend_unhealthy());
        self.m.up.set(i64::from(down.is_none()));
        self.m.board().record(
            self.m.provider,
            &self.m.store,
            down.map_or(Ok(()), Err),
            None,
        );
        if let Some(span) = span {
            record_span(span, Status::of(kind), kind, nanos);
        }
    }

    /// Counts a call as `abandoned` unless [`Pending::done`] is called first.
    fn pending(&self, op: CryptoOperation) -> Pending<'_, P> {
        Pending {
            this: self,
            op,
            start: self.clock.raw(),
            done: false,
        }
    }

    #[cold]
    #[inline(never)]
    fn failed(&self, op: CryptoOperation, kind: ErrorKind) {
        self.m.error(op, kind);
        if self.audit {
            tracing::warn!(
                target: AUDIT_TARGET,
                operation = op.as_str(),
                backend = self.m.provider,
                outcome = "failure",
                error_kind = kind.as_str(),
                timestamp_ms = unix_millis(),
                "key provider audit"
            );
        }
    }
}

/// A provider call in progress; records `abandoned` if dropped before it finished.
struct Pending<'a, P> {
    this: &'a InstrumentedProvider<P>,
    op: CryptoOperation,
    start: u64,
    done: bool,
}

impl<P> Pending<'_, P> {
    fn done(mut self) {
        self.done = true;
    }
}

impl<P> Drop for Pending<'_, P> {
    fn drop(&mut self) {
        if !self.done {
            let clock = &self.this.clock;
            let nanos = clock.nanos_between(self.start, clock.raw());
            self.this.m.ops[crypto_index(self.op)].observe(Status::Abandoned, nanos);
        }
    }
}

macro_rules! provider_span {
    ($name:literal, $self:ident, $op:expr) => {
        tracing::info_span!(
            $name,
            backend = $self.m.provider,
            operation = $op,
            outcome = Empty,
            error_kind = Empty,
            latency_us = Empty
        )
    };
}

impl<P: CryptoProvider> fmt::Display for InstrumentedProvider<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Instrumented({})", self.inner)
    }
}

impl<P: CryptoProvider> fmt::Debug for InstrumentedProvider<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstrumentedProvider")
            .field("inner", &self.inner)
            .field("provider", &self.m.provider)
            .finish_non_exhaustive()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<P: CryptoProvider> CryptoProvider for InstrumentedProvider<P> {
    fn provider(&self) -> &'static str {
        self.inner.provider()
    }

    async fn encrypt(
        &self,
        plaintext: &SecretValue,
        context: &EncryptionContext,
    ) -> Result<Vec<u8>> {
        let span = provider_span!("kms.encrypt", self, "encrypt");
        let pending = self.pending(CryptoOperation::Encrypt);
        let fut = self.inner.encrypt(plaintext, context);
        let (result, nanos, _, span) = timed(&self.clock, span, fut).await;
        pending.done();
        self.record(CryptoOperation::Encrypt, &result, nanos, span.as_ref());
        self.feed_recorder(
            CryptoOperation::Encrypt,
            context,
            result.as_ref().err().map(Error::kind),
            nanos,
        );
        result
    }

    async fn decrypt(&self, ciphertext: &[u8], context: &EncryptionContext) -> Result<SecretValue> {
        let span = provider_span!("kms.decrypt", self, "decrypt");
        let pending = self.pending(CryptoOperation::Decrypt);
        let fut = self.inner.decrypt(ciphertext, context);
        let (result, nanos, _, span) = timed(&self.clock, span, fut).await;
        pending.done();
        self.record(CryptoOperation::Decrypt, &result, nanos, span.as_ref());
        self.feed_recorder(
            CryptoOperation::Decrypt,
            context,
            result.as_ref().err().map(Error::kind),
            nanos,
        );
        result
    }

    async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey> {
        let span = provider_span!("kms.generate_data_key", self, "generate_data_key");
        let pending = self.pending(CryptoOperation::GenerateDataKey);
        let fut = self.inner.generate_data_key(context);
        let (result, nanos, _, span) = timed(&self.clock, span, fut).await;
        pending.done();
        self.record(
            CryptoOperation::GenerateDataKey,
            &result,
            nanos,
            span.as_ref(),
        );
        self.feed_recorder(
            CryptoOperation::GenerateDataKey,
            context,
            result.as_ref().err().map(Error::kind),
            nanos,
        );
        result
    }
}
