//! [`MetricsEndpoint`]: the metrics listener's service: `GET /metrics`, the OpenMetrics text
//! of the registry the stores and the agent register in, and the health checks (`/healthz`,
//! `/readyz`) for probes that cannot reach a loopback listener (a kubelet probes the pod's
//! IP). No token: nothing on it is secret.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Method, Request, Response, StatusCode};
use tower::Service;

use crate::health;
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
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let live = self.live.clone();
        let route = match req.uri().path() {
            "/metrics" => Route::Metrics,
            "/healthz" => Route::Healthz,
            "/readyz" => Route::Readyz,
            _ => Route::NotFound,
        };
        let get = req.method() == Method::GET;
        drop(req);
        Box::pin(async move {
            let response = match (get, route) {
                (_, Route::NotFound) => respond::text(StatusCode::NOT_FOUND, "Not found"),
                (false, _) => respond::text(StatusCode::METHOD_NOT_ALLOWED, "Not allowed"),
                (true, Route::Metrics) => respond::openmetrics(live.registry().encode()),
                (true, Route::Healthz) => respond::text(StatusCode::OK, "ok"),
                (true, _) => {
                    let snap = live.snapshot();
                    let report = health::report(&live, &snap, None).await;
                    let status = if report.ready {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    respond::json(status, &report)
                }
            };
            live.metrics()
                .request(route.as_str(), response.status().as_u16());
            Ok(response)
        })
    }
}
