//! [`InstrumentedProvider`]: the instrumentation decorator of a [`CryptoProvider`].

use std::fmt;

use kms_core::{
    CryptoOperation, CryptoProvider, DataKey, EncryptionContext, Error, ErrorKind, Result,
    SecretValue, async_trait,
};
use tracing::field::Empty;

use crate::clock::LatencyClock;
use crate::families::{KmsMetrics, ProviderMetrics, crypto_index};
use crate::instrumented::{AUDIT_TARGET, record_span, timed, unix_millis};

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
}

impl<P: CryptoProvider> InstrumentedProvider<P> {
    pub(crate) fn new(metrics: &KmsMetrics, inner: P) -> Self {
        Self {
            m: metrics.provider(inner.provider()),
            inner,
            clock: LatencyClock::new(),
            audit: true,
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

    #[inline]
    fn record<T>(
        &self,
        op: CryptoOperation,
        result: &Result<T>,
        nanos: u64,
        span: Option<&tracing::Span>,
    ) {
        let series = &self.m.ops[crypto_index(op)];
        let error = result.as_ref().err().map(Error::kind);
        series.observe(error.is_none(), nanos);
        if let Some(kind) = error {
            self.failed(op, kind);
        }
        if let Some(span) = span {
            record_span(span, error, nanos);
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
        let fut = self.inner.encrypt(plaintext, context);
        let (result, nanos, _, span) = timed(&self.clock, span, fut).await;
        self.record(CryptoOperation::Encrypt, &result, nanos, span.as_ref());
        result
    }

    async fn decrypt(&self, ciphertext: &[u8], context: &EncryptionContext) -> Result<SecretValue> {
        let span = provider_span!("kms.decrypt", self, "decrypt");
        let fut = self.inner.decrypt(ciphertext, context);
        let (result, nanos, _, span) = timed(&self.clock, span, fut).await;
        self.record(CryptoOperation::Decrypt, &result, nanos, span.as_ref());
        result
    }

    async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey> {
        let span = provider_span!("kms.generate_data_key", self, "generate_data_key");
        let fut = self.inner.generate_data_key(context);
        let (result, nanos, _, span) = timed(&self.clock, span, fut).await;
        self.record(
            CryptoOperation::GenerateDataKey,
            &result,
            nanos,
            span.as_ref(),
        );
        result
    }
}
