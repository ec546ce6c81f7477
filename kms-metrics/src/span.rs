//! The operation spans' outcome fields, and timing a future inside a span only when a
//! subscriber wants it; shared by the store decorator and the provider decorator.

use std::pin::pin;

use kms_core::ErrorKind;
use tracing::Instrument;

use crate::clock::LatencyClock;
use crate::status::Status;

/// Fills the outcome fields of an enabled span: `outcome` is the call's `status`.
pub(crate) fn record_span(
    span: &tracing::Span,
    status: Status,
    error: Option<ErrorKind>,
    nanos: u64,
) {
    span.record("outcome", status.as_str());
    span.record("latency_us", nanos / 1_000);
    if let Some(kind) = error {
        span.record("error_kind", kind.as_str());
    }
}

/// Runs `fut` between two clock reads, inside `span` only when a subscriber wants the span
/// (a disabled span is neither cloned nor entered on every poll). Returns the result, the
/// latency in nanoseconds, the raw end reading and the span if enabled.
pub(crate) async fn timed<T>(
    clock: &LatencyClock,
    span: tracing::Span,
    fut: impl Future<Output = T>,
) -> (T, u64, u64, Option<tracing::Span>) {
    if span.is_disabled() {
        let start = clock.raw();
        let result = fut.await;
        let end = clock.raw();
        (result, clock.nanos_between(start, end), end, None)
    } else {
        let start = clock.raw();
        let mut fut = pin!(fut.instrument(span));
        let result = fut.as_mut().await;
        let end = clock.raw();
        let span = fut.span().clone();
        (result, clock.nanos_between(start, end), end, Some(span))
    }
}
