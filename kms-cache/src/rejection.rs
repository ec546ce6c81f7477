//! [`Rejection`]: what the cache did with a consumer's report that a credential it served was
//! refused downstream (see [`CacheHandle::report_rejected`](crate::CacheHandle::report_rejected)).

use kms_core::ErrorKind;

/// How a report of a rejected credential ended. Its [`as_str`](Self::as_str) is the `outcome`
/// label of `<p>_key_credential_rejections_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rejection {
    /// The reported version was dropped and the backend now answers another version, which
    /// the cache holds: the next `get` returns it.
    Refreshed,
    /// The reported version is not the one the cache holds for the key (it never served it,
    /// or already replaced it), and no refresh of it is running: nothing was done and the
    /// backend was not asked. Reports of unknown versions therefore cost nothing, however
    /// many there are (as JWKS verifiers cache unknown key ids negatively).
    IgnoredUnknown,
    /// The reported version is the cached one, but a forced refresh of the key ended less
    /// than the rate limit ago, or one of another version is running: the cache keeps
    /// serving it and the backend was not asked.
    RateLimited,
    /// The backend kept answering the reported version for the whole retry budget (the
    /// window in which a rotation has changed the credential downstream but not yet moved
    /// the secret's current version). It was never served from the cache meanwhile; it may
    /// be cached again from now on.
    StillRejected,
    /// The reload failed with an error of this kind (retryable errors are retried within the
    /// budget; this is the last one). The reported version stays dropped; the next `get`
    /// loads the key as any miss does.
    Failed(ErrorKind),
}

impl Rejection {
    /// A stable label: `"refreshed"`, `"ignored_unknown"`, `"rate_limited"`,
    /// `"still_rejected"`, `"failed"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Refreshed => "refreshed",
            Self::IgnoredUnknown => "ignored_unknown",
            Self::RateLimited => "rate_limited",
            Self::StillRejected => "still_rejected",
            Self::Failed(_) => "failed",
        }
    }

    /// Every label [`as_str`](Self::as_str) returns (for pre-registering metric series).
    pub const LABELS: [&'static str; 5] = [
        "refreshed",
        "ignored_unknown",
        "rate_limited",
        "still_rejected",
        "failed",
    ];
}
