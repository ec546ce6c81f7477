//! [`Router`]: the innermost service, dispatching a request that passed the gate to its route.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use tower::Service;

use crate::health;
use crate::live::Live;
use crate::native;
use crate::respond::{self, Body};
use crate::route::Route;
use crate::secrets_manager;
use crate::snapshot::Snapshot;

/// Dispatches by [`Route`].
#[derive(Clone, Debug)]
pub struct Router {
    live: Arc<Live>,
}

impl Router {
    /// A router reading `live`.
    pub fn new(live: Arc<Live>) -> Self {
        Self { live }
    }
}

impl<B> Service<Request<B>> for Router {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let live = self.live.clone();
        let snap = req
            .extensions()
            .get::<Arc<Snapshot>>()
            .cloned()
            .unwrap_or_else(|| live.snapshot());
        let route = req
            .extensions()
            .get::<Route>()
            .copied()
            .unwrap_or(Route::NotFound);
        // The body is never read: every route is a GET.
        let uri = req.uri().clone();
        drop(req);
        Box::pin(async move {
            Ok(match route {
                Route::Ping => respond::text(StatusCode::OK, "healthy"),
                Route::Healthz => respond::text(StatusCode::OK, "ok"),
                Route::Readyz => {
                    let report = health::report(&live, &snap, None).await;
                    let status = if report.ready {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    respond::json(status, &report)
                }
                Route::SecretsManagerQuery | Route::SecretsManagerPath => {
                    secrets_manager::handle(&snap, route, &uri).await
                }
                Route::KmsStores
                | Route::KmsSecret
                | Route::KmsHealth
                | Route::KmsCacheClear
                | Route::KmsReload => native::handle(&live, &snap, route, &uri).await,
                Route::Metrics | Route::NotFound => {
                    respond::text(StatusCode::NOT_FOUND, "Not found")
                }
            })
        })
    }
}
