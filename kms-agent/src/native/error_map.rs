//! The one place an error of a store becomes a native API answer: an HTTP status by error
//! kind, and a JSON body `{"error": {"kind": …, "message": …}}` (messages never hold values).
//!
//! | Kind | Status |
//! | --- | --- |
//! | `not_found` | 404 |
//! | `invalid_input` | 400 |
//! | `invalid_data` (not JSON, no such field, cannot decrypt) | 422 |
//! | `permission_denied`, `unauthenticated` (the store refused the agent) | 403 |
//! | `conflict` | 409 |
//! | `rate_limited` | 429 |
//! | `unsupported` | 501 |
//! | `backend` | 502 |
//! | `unavailable`, `circuit_open` | 503 |
//! | `timeout` | 504 |
//! | anything else | 500 |

use http::{Response, StatusCode};
use kms::{Error, ErrorKind};

use crate::respond::{self, Body};

/// The status for `kind`.
pub fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::InvalidData => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::PermissionDenied | ErrorKind::Unauthenticated => StatusCode::FORBIDDEN,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Backend => StatusCode::BAD_GATEWAY,
        ErrorKind::Unavailable | ErrorKind::CircuitOpen => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The answer for `e`.
pub fn response(e: &Error) -> Response<Body> {
    respond::json(
        status(e.kind()),
        &serde_json::json!({ "error": { "kind": e.kind().as_str(), "message": e.message() } }),
    )
}

/// An `invalid_input` answer (a malformed request).
pub fn bad_request(message: impl Into<String>) -> Response<Body> {
    response(&Error::new(ErrorKind::InvalidInput, message.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps() {
        for kind in ErrorKind::ALL {
            assert!(
                status(kind).is_client_error() || status(kind).is_server_error(),
                "{kind:?}"
            );
        }
        assert_eq!(status(ErrorKind::NotFound), 404);
        assert_eq!(status(ErrorKind::Configuration), 500);
    }
}
