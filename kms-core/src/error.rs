//! The one error type users see, and its kinds.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// What went wrong, in terms a caller can act on.
///
/// The kind is `Copy`, its [`as_str`](ErrorKind::as_str) is stable (it is a metric label) and
/// [`is_retryable`](ErrorKind::is_retryable) is what the retry layer and the circuit breaker
/// decide by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The key (or the requested version) does not exist.
    NotFound,
    /// The caller is known but not allowed to do this.
    PermissionDenied,
    /// The caller's credentials are missing, invalid or expired.
    Unauthenticated,
    /// The request was rejected before reaching the backend: a bad key name, an oversized
    /// value, a bad argument.
    InvalidInput,
    /// The backend returned data this library cannot interpret (malformed response, bad
    /// encoding, failed decryption). The message never contains the data itself.
    InvalidData,
    /// A write lost a race: a check-and-set version mismatch or a concurrent modification.
    Conflict,
    /// The backend throttled the request.
    RateLimited,
    /// The operation did not finish before its deadline.
    Timeout,
    /// The backend cannot be reached or says it cannot serve (5xx, sealed, no session).
    Unavailable,
    /// The circuit breaker is open; the backend was not called.
    CircuitOpen,
    /// The backend does not support this operation.
    Unsupported,
    /// The store is misconfigured (bad endpoint, missing region, unreadable credential file).
    Configuration,
    /// Any other failure reported by the backend.
    Backend,
}

impl ErrorKind {
    /// A stable, lowercase, snake_case label (`"not_found"`, `"rate_limited"` …) for metrics
    /// and logs. These strings never change once released.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::PermissionDenied => "permission_denied",
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidInput => "invalid_input",
            Self::InvalidData => "invalid_data",
            Self::Conflict => "conflict",
            Self::RateLimited => "rate_limited",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::CircuitOpen => "circuit_open",
            Self::Unsupported => "unsupported",
            Self::Configuration => "configuration",
            Self::Backend => "backend",
        }
    }

    /// Whether the same request may succeed if repeated later: rate limited, timeout and
    /// unavailable. Not found, permission, authentication, invalid input and conflicts are
    /// permanent for that request; an open circuit is the breaker's own answer and is not
    /// retried against it.
    pub const fn is_retryable(self) -> bool {
        matches!(self, Self::RateLimited | Self::Timeout | Self::Unavailable)
    }

    /// Whether this kind says the backend itself is unhealthy (what a circuit breaker and a
    /// health gauge count): the retryable kinds.
    pub const fn is_backend_unhealthy(self) -> bool {
        self.is_retryable()
    }

    /// Whether a cache may answer with a stale value when a load fails with this kind: the
    /// backend could not be asked (unavailable, timed out, rate limited, or the breaker is
    /// open), so the value it last gave is the best answer there is. An answer the backend
    /// actually gave (not found, denied, conflict, invalid …) is never papered over.
    pub const fn serves_stale(self) -> bool {
        self.is_retryable() || matches!(self, Self::CircuitOpen)
    }

    /// Whether the backend's answer withdraws a value a cache may still hold for the key: the
    /// key is gone, or this caller may no longer read it. A stale copy of it must not be
    /// served again (no resurrection of a deleted secret, no leak past a revoked policy).
    pub const fn withdraws_stale(self) -> bool {
        matches!(self, Self::NotFound | Self::PermissionDenied)
    }

    /// Every kind, in declaration order (for pre-registering metric label sets).
    pub const ALL: [ErrorKind; 13] = [
        Self::NotFound,
        Self::PermissionDenied,
        Self::Unauthenticated,
        Self::InvalidInput,
        Self::InvalidData,
        Self::Conflict,
        Self::RateLimited,
        Self::Timeout,
        Self::Unavailable,
        Self::CircuitOpen,
        Self::Unsupported,
        Self::Configuration,
        Self::Backend,
    ];
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotFound => "not found",
            Self::PermissionDenied => "permission denied",
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidInput => "invalid input",
            Self::InvalidData => "invalid data",
            Self::Conflict => "conflict",
            Self::RateLimited => "rate limited",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::CircuitOpen => "circuit open",
            Self::Unsupported => "unsupported",
            Self::Configuration => "configuration error",
            Self::Backend => "backend error",
        })
    }
}

/// The error every [`KeyStore`](crate::KeyStore) operation returns.
///
/// - `Clone` (the source sits behind an `Arc`), so a cache can hand one error to many waiters.
/// - Never holds secret bytes: messages are written by this workspace's own code and name keys,
///   backends, status codes and error codes, never values, tokens or credentials.
/// - [`is_retryable`](Error::is_retryable) is the kind's answer, unless a retry layer already
///   gave up on this error ([`is_exhausted`](Error::is_exhausted)), so retries never nest.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    message: Box<str>,
    backend: Option<&'static str>,
    code: Option<Box<str>>,
    exhausted: bool,
    unsent: bool,
    /// What this error proves about the backend's state, beyond its kind.
    outcome: Outcome,
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

/// What a failed call proves about whether it changed the backend, beyond what its kind says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// The kind decides ([`Error::proves_not_applied`]).
    ByKind,
    /// The backend refused before applying anything ([`Error::not_applied`]).
    NotApplied,
    /// An earlier attempt of the same call may have landed ([`Error::outcome_unknown`]).
    Unknown,
}

/// `Result<T, kms_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a human-readable message (which must not contain secrets).
    ///
    /// The message is made one line ([`one_line`](crate::one_line)): control characters, line
    /// separators and bidirectional overrides a server may have put in quoted text become one
    /// space, so a log line is never split or disguised.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.chars().any(crate::one_line::breaks_a_line) {
            message = crate::one_line::one_line(&message);
        }
        Self {
            kind,
            message: message.into_boxed_str(),
            backend: None,
            code: None,
            exhausted: false,
            unsent: false,
            outcome: Outcome::ByKind,
            source: None,
        }
    }

    /// A [`ErrorKind::NotFound`] error for `key`.
    pub fn not_found(key: &crate::KeyName) -> Self {
        Self::new(ErrorKind::NotFound, format!("key '{key}' does not exist"))
    }

    /// An [`ErrorKind::Unsupported`] error for an operation the backend lacks.
    pub fn unsupported(what: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Unsupported, format!("{what} is not supported"))
    }

    /// Names the backend that produced the error (`"vault"`, `"aws"` …).
    #[must_use]
    pub fn with_backend(mut self, backend: &'static str) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Attaches the backend's own error code (`"ResourceNotFoundException"`, `"403"` …).
    #[must_use]
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into().into_boxed_str());
        self
    }

    /// Attaches the underlying error. Only attach errors whose `Display` cannot contain secret
    /// material (transport errors, SDK error metadata), never a response body.
    #[must_use]
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Marks the error as final: a retry layer gave up on it, so an outer retry must not try
    /// again. [`is_retryable`](Error::is_retryable) returns `false` afterwards; the kind is kept.
    #[must_use]
    pub fn exhausted(mut self) -> Self {
        self.exhausted = true;
        self
    }

    /// Marks the error as a refusal made before the operation could reach the backend (a
    /// layer answered on its own: a misconfigured layer, a limit checked locally).
    /// [`never_reached_backend`](Error::never_reached_backend) returns `true` afterwards.
    #[must_use]
    pub fn before_backend(mut self) -> Self {
        self.unsent = true;
        self
    }

    /// Whether the operation was refused before it could change anything at the backend, so
    /// a caller (or a cache above) may treat it as if it had never been made:
    ///
    /// - [`ErrorKind::CircuitOpen`]: the breaker answered; the backend was not called;
    /// - [`ErrorKind::InvalidInput`]: the request was rejected by validation, in this library
    ///   (key names, value sizes) or by the backend's own validation (an HTTP 400), which
    ///   applies nothing;
    /// - any error marked with [`before_backend`](Error::before_backend) (a misconfigured
    ///   layer answers every call with such a [`ErrorKind::Configuration`] error).
    ///
    /// Every other error, a timeout in particular, *may* have reached the backend: a write
    /// that failed that way may still have landed. The cache keeps its entry for a write
    /// refused this way and drops it for any other failed write; the circuit breaker counts
    /// such an outcome neither as a success nor as a failure.
    pub fn never_reached_backend(&self) -> bool {
        self.unsent || matches!(self.kind, ErrorKind::CircuitOpen | ErrorKind::InvalidInput)
    }

    /// Marks the error as a refusal by the backend that proves nothing was applied, for kinds
    /// that do not say so on their own: a sealed Vault (HTTP 503 "Vault is sealed"), a
    /// connection refused before the request was sent, a lock not acquired before anything was
    /// written. [`proves_not_applied`](Error::proves_not_applied) returns `true` afterwards.
    #[must_use]
    pub fn not_applied(mut self) -> Self {
        if self.outcome == Outcome::ByKind {
            self.outcome = Outcome::NotApplied;
        }
        self
    }

    /// Marks the outcome of the call as unknown whatever this error's kind says: an earlier
    /// attempt of the same call failed in a way that may have landed (a timeout, say), so a
    /// later refusal proves nothing about the call as a whole. The retry layer marks its final
    /// error this way; [`proves_not_applied`](Error::proves_not_applied) returns `false`
    /// afterwards.
    #[must_use]
    pub fn outcome_unknown(mut self) -> Self {
        self.outcome = Outcome::Unknown;
        self
    }

    /// Whether this failure proves the operation changed nothing at the backend, so whatever a
    /// caller or a cache held before (a stale value to fall back on) is still right:
    ///
    /// - every error that [never reached the backend](Error::never_reached_backend);
    /// - the kinds that are a backend's refusal, never a half-done change:
    ///   [`ErrorKind::PermissionDenied`], [`ErrorKind::Unauthenticated`],
    ///   [`ErrorKind::RateLimited`], [`ErrorKind::Conflict`] (a check-and-set that did not
    ///   match), [`ErrorKind::Unsupported`], [`ErrorKind::Configuration`];
    /// - any error a backend marked with [`not_applied`](Error::not_applied).
    ///
    /// Everything else — a timeout, a connection lost after the request was sent, an
    /// unexplained 5xx, a panic — leaves the outcome unknown: the write may have landed. So
    /// does any error marked [`outcome_unknown`](Error::outcome_unknown), whatever its kind.
    pub fn proves_not_applied(&self) -> bool {
        match self.outcome {
            Outcome::NotApplied => return true,
            Outcome::Unknown => return false,
            Outcome::ByKind => {}
        }
        self.never_reached_backend()
            || matches!(
                self.kind,
                ErrorKind::PermissionDenied
                    | ErrorKind::Unauthenticated
                    | ErrorKind::RateLimited
                    | ErrorKind::Conflict
                    | ErrorKind::Unsupported
                    | ErrorKind::Configuration
            )
    }

    /// A [`ErrorKind::Configuration`] error naming the `setting` that is wrong and why, for a
    /// layer or store refusing its configuration when it is built. Marked
    /// [`before_backend`](Error::before_backend).
    pub fn configuration(setting: &str, problem: impl fmt::Display) -> Self {
        Self::new(
            ErrorKind::Configuration,
            format!("invalid setting `{setting}`: {problem}"),
        )
        .before_backend()
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without kind or backend.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The backend that produced the error, when known.
    pub fn backend(&self) -> Option<&'static str> {
        self.backend
    }

    /// The backend's own error code, when known.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// Whether a retry may succeed: the kind is retryable and no retry layer gave up on it yet.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable() && !self.exhausted
    }

    /// Whether a retry layer already gave up on this error.
    pub fn is_exhausted(&self) -> bool {
        self.exhausted
    }

    /// Shorthand for `kind() == ErrorKind::NotFound`.
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.backend {
            Some(backend) => write!(f, "{backend}: {}: {}", self.kind, self.message)?,
            None => write!(f, "{}: {}", self.kind, self.message)?,
        }
        if let Some(code) = &self.code {
            write!(f, " (code {code})")?;
        }
        if self.exhausted {
            f.write_str(" (retries exhausted)")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(backend) = self.backend {
            d.field("backend", &backend);
        }
        if let Some(code) = &self.code {
            d.field("code", code);
        }
        if self.exhausted {
            d.field("exhausted", &true);
        }
        if self.unsent {
            d.field("never_reached_backend", &true);
        }
        match self.outcome {
            Outcome::ByKind => {}
            Outcome::NotApplied => {
                d.field("not_applied", &true);
            }
            Outcome::Unknown => {
                d.field("outcome_unknown", &true);
            }
        }
        if let Some(source) = &self.source {
            d.field("source", &format_args!("{source}"));
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn what_proves_a_write_was_not_applied() {
        let unknown = [
            ErrorKind::Timeout,
            ErrorKind::Unavailable,
            ErrorKind::Backend,
        ];
        for kind in unknown {
            assert!(!Error::new(kind, "x").proves_not_applied(), "{kind:?}");
            assert!(
                Error::new(kind, "x").not_applied().proves_not_applied(),
                "{kind:?}"
            );
        }
        for kind in [
            ErrorKind::PermissionDenied,
            ErrorKind::Unauthenticated,
            ErrorKind::RateLimited,
            ErrorKind::Conflict,
            ErrorKind::InvalidInput,
            ErrorKind::CircuitOpen,
        ] {
            assert!(Error::new(kind, "x").proves_not_applied(), "{kind:?}");
        }
        // A refusal the backend made is not one this library made before sending.
        let sealed = Error::new(ErrorKind::Unavailable, "sealed").not_applied();
        assert!(!sealed.never_reached_backend());
        assert!(format!("{sealed:?}").contains("not_applied"));
        // After an attempt that may have landed, no later refusal proves anything.
        assert!(!sealed.clone().outcome_unknown().proves_not_applied());
        let denied = Error::new(ErrorKind::PermissionDenied, "x").outcome_unknown();
        assert!(!denied.proves_not_applied());
        assert!(!denied.not_applied().proves_not_applied());
    }

    #[test]
    fn messages_are_one_line() {
        let e = Error::new(ErrorKind::Backend, "1 error occurred:\n\t* denied\n\n");
        assert_eq!(e.message(), "1 error occurred: * denied");
        assert_eq!(Error::new(ErrorKind::Backend, "plain").message(), "plain");
    }
    use super::*;

    #[test]
    fn labels_are_stable_and_unique() {
        let labels: std::collections::HashSet<_> =
            ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(labels.len(), ErrorKind::ALL.len());
        assert_eq!(ErrorKind::RateLimited.as_str(), "rate_limited");
        assert_eq!(ErrorKind::CircuitOpen.as_str(), "circuit_open");
    }

    #[test]
    fn only_transient_kinds_are_retryable() {
        let retryable: Vec<_> = ErrorKind::ALL
            .into_iter()
            .filter(|k| k.is_retryable())
            .collect();
        assert_eq!(
            retryable,
            [
                ErrorKind::RateLimited,
                ErrorKind::Timeout,
                ErrorKind::Unavailable
            ]
        );
    }

    #[test]
    fn exhausted_errors_are_not_retried_again() {
        let err = Error::new(ErrorKind::Unavailable, "down");
        assert!(err.is_retryable());
        let err = err.exhausted();
        assert!(!err.is_retryable());
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.to_string().ends_with("(retries exhausted)"));
    }

    #[test]
    fn refusals_never_reached_the_backend() {
        for kind in ErrorKind::ALL {
            let err = Error::new(kind, "x");
            assert_eq!(
                err.never_reached_backend(),
                matches!(kind, ErrorKind::CircuitOpen | ErrorKind::InvalidInput),
                "{kind:?}"
            );
        }
        assert!(
            Error::new(ErrorKind::Timeout, "x")
                .before_backend()
                .never_reached_backend()
        );
        let err = Error::configuration("min_calls", "30 is more than the window of 20");
        assert_eq!(err.kind(), ErrorKind::Configuration);
        assert!(err.never_reached_backend());
        assert_eq!(
            err.to_string(),
            "configuration error: invalid setting `min_calls`: 30 is more than the window of 20"
        );
    }

    #[test]
    fn display_names_backend_and_code() {
        let err = Error::new(ErrorKind::RateLimited, "slow down")
            .with_backend("aws")
            .with_code("ThrottlingException");
        assert_eq!(
            err.to_string(),
            "aws: rate limited: slow down (code ThrottlingException)"
        );
        let cloned = err.clone();
        assert_eq!(cloned.code(), Some("ThrottlingException"));
    }
}
