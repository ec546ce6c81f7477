//! [`MetricsEndpoint`]: the metrics listener's only service: `GET /metrics`, the OpenMetrics
//! text of the registry the stores and the agent register in. No token: scraping needs none,
//! and nothing on it is secret.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Method, Request, Response, StatusCode};
use tower::Service;

use crate::live::Live;
use crate::respond::{self, Body};
use crate::route::Route;

/// See the module docs.
#[derive(Clone, Debug)]
pub struct MetricsEndpoint {
    live: Arc<Live>,
}

impl MetricsEndpoint {
    /// An endpoint serving `live`'s registry.
    pub fn new(live: Arc<Live>) -> Self {
        Self { live }
    }
}

impl<B> Service<Request<B>> for MetricsEndpoint {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let response = match (req.method(), req.uri().path()) {
            (&Method::GET, "/metrics") => respond::openmetrics(self.live.registry().encode()),
            (_, "/metrics") => respond::text(StatusCode::METHOD_NOT_ALLOWED, "Not allowed"),
            _ => respond::text(StatusCode::NOT_FOUND, "Not found"),
        };
        let route = if req.uri().path() == "/metrics" {
            Route::Metrics
        } else {
            Route::NotFound
        };
        self.live
            .metrics()
            .request(route.as_str(), response.status().as_u16());
        ready(Ok(response))
    }
}
