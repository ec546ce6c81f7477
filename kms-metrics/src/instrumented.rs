//! [`Instrumented`]: the service-side decorator that measures every operation. Its layer is
//! [`MetricsLayer`](crate::MetricsLayer); where it goes in the stack is written once, in
//! [`kms_core::layers`].

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use kms_core::{
    Capabilities, Error, ErrorKind, KeyName, KeyPrefix, KeyStore, Operation, Result, SecretMeta,
    SecretValue, StoredSecret,
};
use tracing::field::Empty;

use crate::audit::{AUDIT_TARGET, unix_millis};
use crate::clock::LatencyClock;
use crate::failure_analysis::FailureRecorder;
use crate::families::{Families, KmsMetrics};
use crate::operations::{OPERATIONS, op_index};
use crate::series::OpSeries;
use crate::span::record_span;
use crate::stale_mark;
use crate::status::Status;
use crate::store_name::{StoreName, store_label};

/// One store's pre-resolved service-side series: the hot path increments atomics, never
/// looks up labels.
struct BackendMetrics {
    backend: &'static str,
    store: Arc<str>,
    /// Indexed by [`op_index`].
    ops: [OpSeries; 4],
    families: Arc<Families>,
}

impl BackendMetrics {
    /// Resolves the series of the store `backend` named `store` (unnamed: the backend label).
    fn resolve(metrics: &KmsMetrics, backend: &'static str, store: Option<&StoreName>) -> Self {
        let store = store_label(store, backend);
        let families = metrics.families.clone();
        Self {
            backend,
            ops: OPERATIONS.map(|o| OpSeries::resolve(&families, o.as_str(), backend, &store)),
            store,
            families,
        }
    }

    /// Counts a failure by kind (the failure path may look up its label set).
    fn error(&self, op: Operation, kind: ErrorKind) {
        self.families
            .count_error(op.as_str(), self.backend, &self.store, kind);
    }
}

/// The future type `#[async_trait]` gives every `KeyStore` method.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// The service-side instrumentation decorator: counters by status, errors by kind, latency
/// histogram, in-flight gauge, a tracing span per operation, audit events. `Display` is
/// `Instrumented(<inner>)`.
///
/// The `kms.get` span also declares an empty `cache` field: a cache below (kms-cache) records
/// `"hit"`, `"miss"` or `"stale"` into it through `tracing::Span::current()`.
pub struct Instrumented<S> {
    inner: S,
    m: BackendMetrics,
    audit: bool,
    recorder: Option<FailureRecorder>,
    clock: LatencyClock,
}

impl<S: KeyStore> Instrumented<S> {
    /// Wraps `inner`, resolving its series in `metrics` under the `store` label `store`
    /// (unnamed: the backend label); see [`MetricsLayer`](crate::MetricsLayer) for the rest.
    pub(crate) fn new(
        inner: S,
        metrics: &KmsMetrics,
        store: Option<&StoreName>,
        audit: bool,
        recorder: Option<FailureRecorder>,
    ) -> Self {
        Self {
            m: BackendMetrics::resolve(metrics, inner.backend(), store),
            inner,
            audit,
            recorder,
            clock: LatencyClock::new(),
        }
    }
}

impl<S> Instrumented<S> {
    /// A call dropped before it finished: counted as `abandoned`, with the time until then.
    #[cold]
    #[inline(never)]
    fn abandoned(&self, op: Operation, key: Option<&KeyName>, start: u64) {
        let series = &self.m.ops[op_index(op)];
        series.in_flight.dec();
        let nanos = self.clock.nanos_between(start, self.clock.raw());
        series.observe(Status::Abandoned, nanos);
        if let Some(recorder) = &self.recorder {
            recorder.record_abandoned(op.as_str(), key, Duration::from_nanos(nanos));
        }
    }
}

impl<S: KeyStore> Instrumented<S> {
    /// Records a finished call; `stale`: a `get` the cache answered with an expired value.
    #[inline(always)]
    fn record<T>(
        &self,
        op: Operation,
        key: Option<&KeyName>,
        result: &Result<T>,
        nanos: u64,
        span: Option<&tracing::Span>,
        stale: bool,
    ) {
        let series = &self.m.ops[op_index(op)];
        let error = result.as_ref().err().map(Error::kind);
        let status = match error {
            None if stale => Status::Stale,
            _ => Status::of(error),
        };
        series.observe(status, nanos);
        match error {
            None => {
                if self.audit && matches!(op, Operation::Store | Operation::Remove) {
                    self.audit_success(op, key);
                }
            }
            Some(kind) => {
                self.failed(op, key, kind);
            }
        }
        if let Some(span) = span {
            record_span(span, status, error, nanos);
        }
        if let Some(recorder) = &self.recorder {
            recorder.record(op, key, error, Duration::from_nanos(nanos));
        }
    }

    /// Asks the inner store for an answer at once (a cache hit), inside `span` when a
    /// subscriber wants it, and records an answer as a `get` timed from the raw reading
    /// `start`: `get`'s hit path and `get_now`.
    #[inline(always)]
    fn answer_now(
        &self,
        key: &KeyName,
        span: &tracing::Span,
        start: u64,
    ) -> Option<Result<StoredSecret>> {
        let enabled = !span.is_disabled();
        let result = if enabled {
            span.in_scope(|| self.inner.get_now(key))
        } else {
            self.inner.get_now(key)
        }?;
        let end = self.clock.raw();
        self.record(
            Operation::Get,
            Some(key),
            &result,
            self.clock.nanos_between(start, end),
            enabled.then_some(span),
            false,
        );
        Some(result)
    }

    #[inline(never)]
    fn audit_success(&self, op: Operation, key: Option<&KeyName>) {
        tracing::info!(
            target: AUDIT_TARGET,
            operation = op.as_str(),
            key = key.map_or("", KeyName::as_str),
            backend = self.m.backend,
            outcome = "success",
            timestamp_ms = unix_millis(),
            "key store audit"
        );
    }

    #[cold]
    #[inline(never)]
    fn failed(&self, op: Operation, key: Option<&KeyName>, kind: ErrorKind) {
        self.m.error(op, kind);
        if self.audit {
            tracing::warn!(
                target: AUDIT_TARGET,
                operation = op.as_str(),
                key = key.map_or("", KeyName::as_str),
                backend = self.m.backend,
                outcome = "failure",
                error_kind = kind.as_str(),
                timestamp_ms = unix_millis(),
                "key store audit"
            );
        }
    }
}

macro_rules! span_for {
    ($name:literal, $self:ident, $op:expr $(, $field:ident)*) => {
        tracing::info_span!(
            $name,
            backend = $self.m.backend,
            operation = $op,
            outcome = Empty,
            error_kind = Empty,
            latency_us = Empty
            $(, $field = Empty)*
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
            .field("store", &&*self.m.store)
            .finish_non_exhaustive()
    }
}

/// The future of one instrumented call: the inner store's boxed future, polled inside the
/// span when a subscriber wants it, and the metrics recorded when it completes, or as
/// `abandoned` when it is dropped before (the caller gave up: a request timeout, a `select!`).
///
/// Written by hand rather than as an `async` block: the inner future is already a
/// `Pin<Box<dyn Future>>` (so this is `Unpin` and needs no pin projection), and the outcome is
/// recorded straight from `poll`, without moving the result through the intermediate states
/// of a generated state machine. The start time is read when the call is made, and the call
/// counts in `<p>_key_operations_in_flight` from then until it finishes or is dropped. A `get`
/// also reads whether the cache below answered it stale (see `stale_mark.rs`).
struct Measured<'a, S, T> {
    this: &'a Instrumented<S>,
    op: Operation,
    key: Option<&'a KeyName>,
    start: u64,
    finished: bool,
    /// `Some` only when a subscriber is interested.
    span: Option<tracing::Span>,
    inner: BoxFuture<'a, T>,
}

impl<'a, S: KeyStore, T> Measured<'a, S, T> {
    #[inline]
    fn new(
        this: &'a Instrumented<S>,
        op: Operation,
        key: Option<&'a KeyName>,
        span: tracing::Span,
        inner: impl FnOnce() -> BoxFuture<'a, T>,
    ) -> Self {
        Self::started(this, op, key, span, this.clock.raw(), inner)
    }

    /// As [`new`](Self::new), timed from the raw reading `start` taken by the caller.
    #[inline]
    fn started(
        this: &'a Instrumented<S>,
        op: Operation,
        key: Option<&'a KeyName>,
        span: tracing::Span,
        start: u64,
        inner: impl FnOnce() -> BoxFuture<'a, T>,
    ) -> Self {
        let span = (!span.is_disabled()).then_some(span);
        // The inner call may do work before returning its future: create it inside the span
        // and after the first clock read.
        let inner = match &span {
            None => inner(),
            Some(span) => span.in_scope(inner),
        };
        // In flight from here; `Drop` or `poll` takes it out.
        this.m.ops[op_index(op)].in_flight.inc();
        Self {
            this,
            op,
            key,
            start,
            finished: false,
            span,
            inner,
        }
    }
}

impl<S: KeyStore, T> Future for Measured<'_, S, T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let call = &mut *self;
        let watch_stale = call.op == Operation::Get;
        if watch_stale {
            stale_mark::clear();
        }
        let result = match &call.span {
            None => ready!(call.inner.as_mut().poll(cx)),
            Some(span) => {
                let _entered = span.enter();
                ready!(call.inner.as_mut().poll(cx))
            }
        };
        call.finished = true;
        let this = call.this;
        this.m.ops[op_index(call.op)].in_flight.dec();
        let nanos = this.clock.nanos_between(call.start, this.clock.raw());
        let stale = watch_stale && stale_mark::take();
        this.record(call.op, call.key, &result, nanos, call.span.as_ref(), stale);
        Poll::Ready(result)
    }
}

impl<S, T> Drop for Measured<'_, S, T> {
    fn drop(&mut self) {
        if !self.finished {
            self.this.abandoned(self.op, self.key, self.start);
        }
    }
}

// The data methods are written in the form `#[async_trait]` expands to, returning a boxed
// `Measured`: one allocation per call, the same as an `async fn` under `#[async_trait]`, and
// nothing else.
#[deny(clippy::missing_trait_methods)]
impl<S: KeyStore> KeyStore for Instrumented<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn get<'s, 'k, 'f>(&'s self, key: &'k KeyName) -> BoxFuture<'f, StoredSecret>
    where
        's: 'f,
        'k: 'f,
        Self: 'f,
    {
        let span = span_for!("kms.get", self, "get", cache);
        // A store that can answer at once (a cache hit) is asked first: the hit is measured
        // here, synchronously, and handed back in a ready future, with no second boxed future
        // and no poll machinery.
        let start = self.clock.raw();
        if let Some(result) = self.answer_now(key, &span, start) {
            return Box::pin(std::future::ready(result));
        }
        Box::pin(Measured::started(
            self,
            Operation::Get,
            Some(key),
            span,
            start,
            || self.inner.get(key),
        ))
    }

    fn get_now(&self, key: &KeyName) -> Option<Result<StoredSecret>> {
        // Forwarded, and an answer counted exactly as the `get` it stands for (the hit path of
        // `get` above: same counters, latency, span and audit; never in flight). Without an
        // answer nothing is counted, but the `kms.get` span made for the inner call (so that a
        // cache can record its `cache` field) closes empty: the caller's `get` opens its own.
        let span = span_for!("kms.get", self, "get", cache);
        let start = self.clock.raw();
        self.answer_now(key, &span, start)
    }

    fn get_version<'s, 'k, 'v, 'f>(
        &'s self,
        key: &'k KeyName,
        version: &'v str,
    ) -> BoxFuture<'f, StoredSecret>
    where
        's: 'f,
        'k: 'f,
        'v: 'f,
        Self: 'f,
    {
        let span = span_for!("kms.get", self, "get", cache);
        Box::pin(Measured::new(self, Operation::Get, Some(key), span, || {
            self.inner.get_version(key, version)
        }))
    }

    fn store<'s, 'k, 'f>(
        &'s self,
        key: &'k KeyName,
        value: SecretValue,
    ) -> BoxFuture<'f, SecretMeta>
    where
        's: 'f,
        'k: 'f,
        Self: 'f,
    {
        let span = span_for!("kms.store", self, "store");
        Box::pin(Measured::new(
            self,
            Operation::Store,
            Some(key),
            span,
            || self.inner.store(key, value),
        ))
    }

    fn store_if_version<'s, 'k, 'e, 'f>(
        &'s self,
        key: &'k KeyName,
        value: SecretValue,
        expected: Option<&'e str>,
    ) -> BoxFuture<'f, SecretMeta>
    where
        's: 'f,
        'k: 'f,
        'e: 'f,
        Self: 'f,
    {
        let span = span_for!("kms.store", self, "store");
        Box::pin(Measured::new(
            self,
            Operation::Store,
            Some(key),
            span,
            || self.inner.store_if_version(key, value, expected),
        ))
    }

    fn remove<'s, 'k, 'f>(&'s self, key: &'k KeyName) -> BoxFuture<'f, ()>
    where
        's: 'f,
        'k: 'f,
        Self: 'f,
    {
        let span = span_for!("kms.remove", self, "remove");
        Box::pin(Measured::new(
            self,
            Operation::Remove,
            Some(key),
            span,
            || self.inner.remove(key),
        ))
    }

    fn list<'s, 'p, 'f>(&'s self, prefix: &'p KeyPrefix) -> BoxFuture<'f, Vec<KeyName>>
    where
        's: 'f,
        'p: 'f,
        Self: 'f,
    {
        let span = span_for!("kms.list", self, "list");
        Box::pin(Measured::new(self, Operation::List, None, span, || {
            self.inner.list(prefix)
        }))
    }

    fn health<'s, 'f>(&'s self) -> BoxFuture<'f, ()>
    where
        's: 'f,
        Self: 'f,
    {
        // Health is the backend's, reported by the `BackendMonitor` below; nothing to count.
        self.inner.health()
    }
}
