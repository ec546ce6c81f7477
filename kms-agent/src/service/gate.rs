//! [`GateLayer`]: what a request must pass before any route sees it, in the AWS agent's order:
//!
//! 1. the connection cap: more open connections than `max_conn` → 429 `Connection limit
//!    exceeded` (health checks get two more, as `/ping` does there);
//! 2. health checks (`/ping`, `/healthz`, `/readyz`) skip 3 and 4;
//! 3. an `X-Forwarded-For` header → 400 `Forwarded` (a proxy in front defeats the token);
//! 4. the token, in one of `ssrf_headers` → 403 `Bad Token` (missing, or wrong);
//! 5. the route's method only (GET; POST for a cache clear) → 405 `Not allowed`;
//! 6. a declared body larger than `max_body_bytes` → 413.
//!
//! A refused response is tagged with its [`Refusal`], which the record layer counts. The log
//! line says the reason, never a header's value.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::Either;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{Request, Response, StatusCode};
use tower::{Layer, Service};

use crate::live::Live;
use crate::metrics::Refusal;
use crate::respond::{self, Body};
use crate::route::Route;
use crate::snapshot::Snapshot;

/// Makes [`Gate`] services.
#[derive(Clone, Debug)]
pub struct GateLayer {
    live: Arc<Live>,
}

impl GateLayer {
    /// A gate reading `live` (connection count).
    pub fn new(live: Arc<Live>) -> Self {
        Self { live }
    }
}

impl<S> Layer<S> for GateLayer {
    type Service = Gate<S>;

    fn layer(&self, inner: S) -> Gate<S> {
        Gate {
            inner,
            live: self.live.clone(),
        }
    }
}

/// See [`GateLayer`].
#[derive(Clone, Debug)]
pub struct Gate<S> {
    inner: S,
    live: Arc<Live>,
}

/// The checks, on a request's parts.
pub fn check<B>(
    req: &Request<B>,
    snap: &Snapshot,
    open_connections: usize,
    route: Route,
) -> Result<(), Refusal> {
    let allowance = if route.is_health_check() { 2 } else { 0 };
    if open_connections > snap.secrets_manager.max_conn + allowance {
        return Err(Refusal::ConnectionLimit);
    }
    let headers = req.headers();
    if !route.is_health_check() {
        if headers.contains_key("x-forwarded-for") {
            return Err(Refusal::Forwarded);
        }
        let mut presented = false;
        for name in &snap.secrets_manager.ssrf_headers {
            for value in headers.get_all(name) {
                presented = true;
                if snap.token.matches(value.as_bytes()) {
                    return finish(req, snap, route);
                }
            }
        }
        return Err(if presented {
            Refusal::BadToken
        } else {
            Refusal::MissingToken
        });
    }
    finish(req, snap, route)
}

fn finish<B>(req: &Request<B>, snap: &Snapshot, route: Route) -> Result<(), Refusal> {
    if req.method() != route.method() {
        return Err(Refusal::Method);
    }
    let max = snap.agent.limits.max_body_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max)
        || (max == 0 && req.headers().contains_key(TRANSFER_ENCODING))
    {
        return Err(Refusal::BodyTooLarge);
    }
    Ok(())
}

/// The answer to a refusal: the AWS agent's status and text.
pub fn refusal_response(reason: Refusal) -> Response<Body> {
    let (status, text) = match reason {
        Refusal::ConnectionLimit => (StatusCode::TOO_MANY_REQUESTS, "Connection limit exceeded"),
        Refusal::Forwarded => (StatusCode::BAD_REQUEST, "Forwarded"),
        Refusal::MissingToken | Refusal::BadToken => (StatusCode::FORBIDDEN, "Bad Token"),
        Refusal::Method => (StatusCode::METHOD_NOT_ALLOWED, "Not allowed"),
        Refusal::BodyTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "Payload too large"),
        Refusal::HeadersTooLarge => (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Headers too large",
        ),
        Refusal::HeaderTimeout => (StatusCode::REQUEST_TIMEOUT, "Timeout"),
    };
    let mut r = respond::text(status, text);
    r.extensions_mut().insert(reason);
    r
}

impl<S, B> Service<Request<B>> for Gate<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response<Body>, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let snap = req
            .extensions()
            .get::<Arc<Snapshot>>()
            .cloned()
            .unwrap_or_else(|| self.live.snapshot());
        let route = req
            .extensions()
            .get::<Route>()
            .copied()
            .unwrap_or(Route::NotFound);
        match check(&req, &snap, self.live.connections(), route) {
            Ok(()) => Either::Right(self.inner.call(req)),
            Err(reason) => {
                tracing::warn!(
                    reason = reason.as_str(),
                    route = route.as_str(),
                    "refused a request"
                );
                Either::Left(ready(Ok(refusal_response(reason))))
            }
        }
    }
}
