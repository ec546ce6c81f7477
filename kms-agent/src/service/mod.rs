//! The request pipeline of the API listeners, as tower layers (outermost first):
//!
//! ```text
//! record → timeout → gate → router
//! ```
//!
//! `record` is outermost so every answer is counted, the timeout's 504 and the gate's
//! refusals included; the timeout (tower-http, `[agent.limits] request_timeout`) bounds
//! everything below it; the gate refuses before any store is touched; the router dispatches.
//! Connection-level limits (header size and count, header read timeout) are the HTTP
//! connection's own settings (see `server`).

pub mod gate;
pub mod metrics_endpoint;
pub mod record;
pub mod router;

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use tower::ServiceBuilder;
use tower_http::timeout::{Timeout, TimeoutLayer};

use crate::live::Live;

pub use gate::{Gate, GateLayer};
pub use metrics_endpoint::MetricsEndpoint;
pub use record::{Record, RecordLayer};
pub use router::Router;

/// The API listeners' service.
pub type Api = Record<Timeout<Gate<Router>>>;

/// Builds the pipeline.
pub fn api(live: Arc<Live>, request_timeout: Duration) -> Api {
    ServiceBuilder::new()
        .layer(RecordLayer::new(live.clone()))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            request_timeout,
        ))
        .layer(GateLayer::new(live.clone()))
        .service(Router::new(live))
}
