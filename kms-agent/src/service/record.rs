//! [`RecordLayer`]: the outermost layer. It takes the current snapshot once per request (every
//! layer below sees the same configuration), classifies the route, and counts every answer
//! by route and status, every refusal by reason, and the requests in flight.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use prometheus_client::metrics::gauge::Gauge;
use tower::{Layer, Service};

use crate::live::Live;
use crate::metrics::Refusal;
use crate::respond::Body;
use crate::route::Route;

/// Makes [`Record`] services.
#[derive(Clone, Debug)]
pub struct RecordLayer {
    live: Arc<Live>,
}

impl RecordLayer {
    /// A layer reading `live`.
    pub fn new(live: Arc<Live>) -> Self {
        Self { live }
    }
}

impl<S> Layer<S> for RecordLayer {
    type Service = Record<S>;

    fn layer(&self, inner: S) -> Record<S> {
        Record {
            inner,
            live: self.live.clone(),
        }
    }
}

/// See [`RecordLayer`].
#[derive(Clone, Debug)]
pub struct Record<S> {
    inner: S,
    live: Arc<Live>,
}

/// Counts a request in flight until dropped (also when the client leaves mid-request).
struct InFlight(Gauge);

impl InFlight {
    fn new(g: &Gauge) -> Self {
        g.inc();
        Self(g.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl<S, B> Service<Request<B>> for Record<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let snap = self.live.snapshot();
        let sm = &snap.secrets_manager;
        let route = Route::of(req.uri().path(), &sm.path_prefix, sm.enabled);
        req.extensions_mut().insert(route);
        req.extensions_mut().insert(snap);
        let in_flight = InFlight::new(self.live.metrics().in_flight());
        let started = Instant::now();
        let fut = self.inner.call(req);
        let live = self.live.clone();
        Box::pin(async move {
            let _in_flight = in_flight;
            let Ok(response) = fut.await;
            let status = response.status().as_u16();
            let metrics = live.metrics();
            metrics.request(route.as_str(), status);
            if let Some(reason) = response.extensions().get::<Refusal>().copied() {
                metrics.refused(reason);
            }
            tracing::debug!(
                route = route.as_str(),
                status,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "request"
            );
            Ok(response)
        })
    }
}
