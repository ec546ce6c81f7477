//! The one place an error of a store becomes a Secrets Manager error: the `__type` and HTTP
//! status Secrets Manager (and so the AWS agent) would answer with.
//!
//! | Store error kind | Status | `__type` |
//! | --- | --- | --- |
//! | `not_found` | 400 | `ResourceNotFoundException` |
//! | `invalid_input` (a name the stores cannot hold) | 400 | `InvalidParameterException` |
//! | `permission_denied`, `unauthenticated` | 400 | `AccessDeniedException` |
//! | `rate_limited` | 400 | `ThrottlingException` |
//! | `invalid_data` (a value that cannot be decrypted) | 400 | `DecryptionFailure` |
//! | `unsupported` | 400 | `InvalidRequestException` |
//! | `timeout` | 504 | `TimeoutError` |
//! | `unavailable` | 502 | `ConnectionError` |
//! | `circuit_open` | 503 | `ServiceUnavailable` |
//! | anything else | 500 | `InternalFailure` (no message; the log has it) |

use kms::{Error, ErrorKind};

use super::error::SmError;

/// Maps `e`; `not_found` is the message for a missing secret (it depends on what was asked:
/// the secret, a version id, a staging label).
pub fn to_sm_error(e: &Error, not_found: &str) -> SmError {
    match e.kind() {
        ErrorKind::NotFound => SmError::not_found(not_found),
        ErrorKind::InvalidInput => SmError::aws(400, "InvalidParameterException", e.message()),
        ErrorKind::PermissionDenied | ErrorKind::Unauthenticated => {
            SmError::aws(400, "AccessDeniedException", e.message())
        }
        ErrorKind::RateLimited => SmError::aws(400, "ThrottlingException", "Rate exceeded"),
        ErrorKind::InvalidData => SmError::aws(400, "DecryptionFailure", e.message()),
        ErrorKind::Unsupported => SmError::aws(400, "InvalidRequestException", e.message()),
        ErrorKind::Timeout => SmError::aws(504, "TimeoutError", "Timeout"),
        ErrorKind::Unavailable => SmError::aws(502, "ConnectionError", "Read Error"),
        ErrorKind::CircuitOpen => SmError::aws(503, "ServiceUnavailable", e.message()),
        _ => {
            tracing::error!(error = %e, "internal failure answering a Secrets Manager request");
            SmError::aws(500, "InternalFailure", "")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_status() {
        for kind in ErrorKind::ALL {
            let e = to_sm_error(&Error::new(kind, "m"), "nf");
            let status = e.status();
            assert!(
                [400, 500, 502, 503, 504].contains(&status),
                "{kind:?}: {status}"
            );
        }
        assert_eq!(
            to_sm_error(&Error::new(ErrorKind::NotFound, "m"), "nf"),
            SmError::not_found("nf")
        );
        assert_eq!(
            to_sm_error(&Error::new(ErrorKind::Backend, "m"), "nf").body(),
            br#"{"__type":"InternalFailure"}"#
        );
    }
}
