//! The `status` label of `<p>_key_operations_total` and `<p>_key_backend_requests_total`.
//!
//! A not-found or a conflict is an *answer* from a healthy backend about the data (the key is
//! not there; another writer won), not a failure of the store: it gets its own status, so
//! `status="failure"` and every alert built on it count only what went wrong. A call the
//! caller gave up on (its future dropped before it finished) is `abandoned`. A read the cache
//! answered with an expired value because the backend could not give a current one is
//! `stale` (service side only): answered, but not with what the backend holds now, so
//! `success` keeps meaning a current value and an outage shows on the operations panels.

use kms_core::ErrorKind;

/// Status label values, indexed by [`Status`] as `usize`.
pub(crate) const STATUSES: [&str; 6] = [
    "success",
    "not_found",
    "conflict",
    "failure",
    "abandoned",
    "stale",
];

/// The statuses of calls that reached the backend (`<p>_key_backend_requests_total`): all but
/// `stale`, which only a cache above it answers.
pub(crate) const BACKEND_STATUSES: [&str; 5] =
    ["success", "not_found", "conflict", "failure", "abandoned"];

/// The outcome of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Success = 0,
    NotFound = 1,
    Conflict = 2,
    Failure = 3,
    Abandoned = 4,
    /// A `get` answered with an expired cache entry (stale-if-error).
    Stale = 5,
}

impl Status {
    /// The status of a finished call: `error` is its error kind, if it failed.
    #[inline]
    pub(crate) fn of(error: Option<ErrorKind>) -> Self {
        match error {
            None => Self::Success,
            Some(ErrorKind::NotFound) => Self::NotFound,
            Some(ErrorKind::Conflict) => Self::Conflict,
            Some(_) => Self::Failure,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        STATUSES[self as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_failures_are_failures() {
        assert_eq!(Status::of(None).as_str(), "success");
        assert_eq!(Status::of(Some(ErrorKind::NotFound)).as_str(), "not_found");
        assert_eq!(Status::of(Some(ErrorKind::Conflict)).as_str(), "conflict");
        for kind in ErrorKind::ALL {
            if !matches!(kind, ErrorKind::NotFound | ErrorKind::Conflict) {
                assert_eq!(Status::of(Some(kind)), Status::Failure, "{kind:?}");
            }
        }
        assert_eq!(Status::Abandoned.as_str(), "abandoned");
        assert_eq!(Status::Stale.as_str(), "stale");
        assert_eq!(BACKEND_STATUSES, STATUSES[..5]);
    }
}
