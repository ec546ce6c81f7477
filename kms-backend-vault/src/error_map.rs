//! The one place Vault failures become [`kms_core::Error`]s.

use kms_core::{Error, ErrorKind};

/// The backend label on every error and in metrics.
pub(crate) const BACKEND: &str = "vault";

/// A failed Vault request, before it is mapped.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Vault answered with a non-success status and its `errors` list.
    Status {
        /// The HTTP status.
        status: u16,
        /// Vault's `errors` strings (paths and reasons, never secret values).
        errors: Vec<String>,
    },
    /// The request never got an answer (connect, TLS, timeout).
    Transport(reqwest::Error),
    /// The answer could not be interpreted (what was wrong, never the body itself).
    Malformed(String),
}

/// Maps a [`Failure`] to an [`Error`]; `what` names the request (`"get secret/data/app/db"`).
///
/// | Vault says | Kind |
/// |---|---|
/// | 404 | `NotFound` |
/// | 400 with a check-and-set mismatch, 412 | `Conflict` |
/// | 400 otherwise | `InvalidInput` |
/// | 401 | `Unauthenticated` |
/// | 403 (after the one re-login) | `PermissionDenied` |
/// | 429 | `RateLimited` |
/// | 500, 502, 503 (sealed, standby), 504 | `Unavailable` |
/// | timeout | `Timeout` |
/// | connect/TLS failure | `Unavailable` |
/// | malformed JSON, unexpected shape | `InvalidData` |
pub(crate) fn to_error(failure: Failure, what: &str) -> Error {
    match failure {
        Failure::Status { status, errors } => {
            let reason = summarize(&errors);
            let kind = match status {
                404 => ErrorKind::NotFound,
                412 => ErrorKind::Conflict,
                400 if reason.contains("check-and-set") => ErrorKind::Conflict,
                400 => ErrorKind::InvalidInput,
                401 => ErrorKind::Unauthenticated,
                403 => ErrorKind::PermissionDenied,
                429 => ErrorKind::RateLimited,
                500 | 502 | 503 | 504 => ErrorKind::Unavailable,
                _ => ErrorKind::Backend,
            };
            let sealed = if reason.contains("sealed") {
                " (sealed)"
            } else {
                ""
            };
            let message = if reason.is_empty() {
                format!("{what}: HTTP {status}{sealed}")
            } else {
                format!("{what}: HTTP {status}{sealed}: {reason}")
            };
            Error::new(kind, message)
                .with_backend(BACKEND)
                .with_code(status.to_string())
        }
        Failure::Transport(err) => {
            let kind = if err.is_timeout() {
                ErrorKind::Timeout
            } else {
                ErrorKind::Unavailable
            };
            let reason = if err.is_timeout() {
                "timed out"
            } else if err.is_connect() {
                "cannot connect"
            } else {
                "transport error"
            };
            // reqwest's Display names the URL (address and path), never headers or bodies.
            Error::new(kind, format!("{what}: {reason}"))
                .with_backend(BACKEND)
                .with_source(err.without_url())
        }
        Failure::Malformed(reason) => {
            Error::new(ErrorKind::InvalidData, format!("{what}: {reason}")).with_backend(BACKEND)
        }
    }
}

/// Vault's error strings, joined and bounded (they hold paths and reasons, not values).
fn summarize(errors: &[String]) -> String {
    let mut joined = errors.join("; ");
    if joined.len() > 300 {
        let mut cut = 300;
        while !joined.is_char_boundary(cut) {
            cut -= 1;
        }
        joined.truncate(cut);
        joined.push('…');
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, errors: &[&str]) -> ErrorKind {
        to_error(
            Failure::Status {
                status,
                errors: errors.iter().map(|s| s.to_string()).collect(),
            },
            "op",
        )
        .kind()
    }

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(status(404, &[]), ErrorKind::NotFound);
        assert_eq!(
            status(403, &["permission denied"]),
            ErrorKind::PermissionDenied
        );
        assert_eq!(status(401, &[]), ErrorKind::Unauthenticated);
        assert_eq!(status(429, &[]), ErrorKind::RateLimited);
        assert_eq!(status(500, &[]), ErrorKind::Unavailable);
        assert_eq!(status(502, &[]), ErrorKind::Unavailable);
        assert_eq!(status(503, &["Vault is sealed"]), ErrorKind::Unavailable);
        assert_eq!(status(412, &[]), ErrorKind::Conflict);
        assert_eq!(
            status(
                400,
                &["check-and-set parameter did not match the current version"]
            ),
            ErrorKind::Conflict
        );
        assert_eq!(status(400, &["bad"]), ErrorKind::InvalidInput);
        assert_eq!(status(418, &[]), ErrorKind::Backend);
    }

    #[test]
    fn messages_are_bounded_and_name_the_request() {
        let long = "x".repeat(1000);
        let err = to_error(
            Failure::Status {
                status: 503,
                errors: vec!["Vault is sealed".into(), long],
            },
            "get secret/data/a",
        );
        let msg = err.to_string();
        assert!(msg.contains("get secret/data/a"), "{msg}");
        assert!(msg.contains("(sealed)"), "{msg}");
        assert!(msg.len() < 500, "{msg}");
        assert_eq!(err.backend(), Some("vault"));
        assert_eq!(err.code(), Some("503"));
    }

    #[test]
    fn malformed_is_invalid_data() {
        let err = to_error(Failure::Malformed("not JSON".into()), "op");
        assert_eq!(err.kind(), ErrorKind::InvalidData);
    }
}
