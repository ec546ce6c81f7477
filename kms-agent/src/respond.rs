//! Building responses: the body type every route answers with, and text and JSON bodies.
//! Every response carries `Cache-Control: no-store` (secret values must not land in an HTTP
//! cache on the way).

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

/// The response body of every route.
pub type Body = Full<Bytes>;

fn with_type(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A plain-text response (the AWS agent's refusals and request errors are plain text).
pub fn text(status: StatusCode, text: impl Into<Bytes>) -> Response<Body> {
    with_type(status, "text/plain; charset=utf-8", text.into())
}

/// A JSON response from serialised bytes.
pub fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    with_type(status, "application/json", Bytes::from(body))
}

/// A JSON response.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => json_bytes(status, body),
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot write the response",
        ),
    }
}

/// Raw bytes (a secret's value, `format=raw`).
pub fn octets(status: StatusCode, body: Bytes) -> Response<Body> {
    with_type(status, "application/octet-stream", body)
}

/// The OpenMetrics text exposition.
pub fn openmetrics(body: String) -> Response<Body> {
    with_type(
        StatusCode::OK,
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        Bytes::from(body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_response_is_no_store() {
        for r in [
            text(StatusCode::OK, "x"),
            json(StatusCode::OK, &serde_json::json!({"a": 1})),
            octets(StatusCode::OK, Bytes::from_static(b"x")),
            openmetrics(String::new()),
        ] {
            assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
            assert!(r.headers().contains_key(CONTENT_TYPE));
        }
    }
}
