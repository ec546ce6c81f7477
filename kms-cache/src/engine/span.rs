//! The `cache` span field a `get` records its outcome into (see the crate docs).

/// The span field's name.
const SPAN_FIELD: &str = "cache";

/// Records `outcome` into the current span's `cache` field; a no-op when no subscriber is
/// installed or the span does not declare the field.
#[inline]
pub(crate) fn record_outcome(outcome: &'static str) {
    if tracing::dispatcher::has_been_set() {
        tracing::Span::current().record(SPAN_FIELD, outcome);
    }
}
