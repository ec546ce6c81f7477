//! Audit events: their tracing target and timestamp, shared by the store decorator and the
//! provider decorator.

use std::time::{SystemTime, UNIX_EPOCH};

/// The tracing target of audit events.
pub const AUDIT_TARGET: &str = "kms::audit";

/// The wall-clock time of an audit event, in Unix milliseconds (0 before 1970).
pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
