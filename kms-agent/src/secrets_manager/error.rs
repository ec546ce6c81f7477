//! [`SmError`]: a refused or failed AWS-compatible request, answered as the AWS agent answers:
//! plain text for malformed requests, Secrets Manager's JSON error (`{"__type": …,
//! "message": …}`, `{"__type":"InternalFailure"}` for 500) for everything the store said.

use std::fmt;

use http::{Response, StatusCode};

use crate::respond::{self, Body};

/// An error answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmError {
    /// A malformed request: 400 with a plain-text message.
    Request(String),
    /// A Secrets Manager error: the status, the `__type` and the message.
    Aws {
        /// HTTP status.
        status: u16,
        /// `__type`.
        code: &'static str,
        /// `message`.
        message: String,
    },
}

impl SmError {
    /// A Secrets Manager error.
    pub fn aws(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self::Aws {
            status,
            code,
            message: message.into(),
        }
    }

    /// `ResourceNotFoundException` (400, as Secrets Manager answers).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::aws(400, "ResourceNotFoundException", message)
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::Request(_) => 400,
            Self::Aws { status, .. } => *status,
        }
    }

    /// The body, as the AWS agent writes it.
    pub fn body(&self) -> Vec<u8> {
        match self {
            Self::Request(m) => m.clone().into_bytes(),
            Self::Aws { code, message, .. } if message.is_empty() || *code == "InternalFailure" => {
                br#"{"__type":"InternalFailure"}"#.to_vec()
            }
            Self::Aws { code, message, .. } => {
                serde_json::to_vec(&serde_json::json!({ "__type": code, "message": message }))
                    .expect("plain strings serialise")
            }
        }
    }

    /// The response.
    pub fn response(&self) -> Response<Body> {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match self {
            Self::Request(m) => respond::text(status, m.clone()),
            Self::Aws { .. } => respond::json_bytes(status, self.body()),
        }
    }
}

impl fmt::Display for SmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Request(m) => write!(f, "400 {m}"),
            Self::Aws {
                status,
                code,
                message,
            } => write!(f, "{status} {code}: {message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_the_aws_agents() {
        assert_eq!(
            SmError::not_found("Secrets Manager can't find the specified secret.").body(),
            br#"{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}"#
        );
        assert_eq!(
            SmError::aws(500, "InternalFailure", "detail").body(),
            br#"{"__type":"InternalFailure"}"#
        );
        assert_eq!(
            SmError::aws(500, "Other", "").body(),
            br#"{"__type":"InternalFailure"}"#
        );
        assert_eq!(
            SmError::Request("missing secret ID".into()).body(),
            b"missing secret ID"
        );
        // Quotes in a message stay inside the JSON string.
        let v: serde_json::Value =
            serde_json::from_slice(&SmError::aws(400, "X", "a\",\"b").body()).unwrap();
        assert_eq!(v["message"], "a\",\"b");
    }

    #[test]
    fn responses_carry_the_status() {
        assert_eq!(SmError::Request("x".into()).response().status(), 400);
        assert_eq!(
            SmError::aws(504, "TimeoutError", "Timeout")
                .response()
                .status(),
            504
        );
    }
}
