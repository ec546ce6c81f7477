//! The accept loop: one per listener, each connection served by hyper's HTTP/1 server on its
//! own task, watched by the graceful-shutdown handle so a shutdown lets in-flight requests
//! finish and closes idle connections.
//!
//! A connection counts towards `max_conn` from its first request on (when hyper has read a
//! whole request head), not from the accept: a client that connects and sends nothing, or
//! trickles its headers (slowloris), holds no slot of the cap, so a thousand of them do not
//! lock well-behaved clients out with 429s; `header_read_timeout` closes them, and what each
//! costs until then is a socket, a task and hyper's read buffer.
//!
//! Connection-level limits are hyper's: `max_header_bytes` (request line and headers) and
//! `max_headers` (431 beyond, answered by hyper), and `header_read_timeout`, which also closes
//! a keep-alive connection left idle that long. Both are counted as refusals when the
//! connection ends (a header timeout only if the connection never completed a request: an
//! idle keep-alive connection timing out is not a refusal).

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::rt::{Read, Write};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::sync::watch;
use tower::{Service, ServiceExt};

use super::listener::{Accepted, Listener};
use crate::config::Limits;
use crate::live::{ConnectionGuard, Live};
use crate::metrics::Refusal;
use crate::respond::Body;

/// How long the loop waits after a failed accept (out of file descriptors, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The connection settings of a listener.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionSettings {
    header_read_timeout: Duration,
    max_header_bytes: usize,
    max_headers: usize,
    /// Whether connections count towards `max_conn` (the API listeners; not metrics).
    counted: bool,
}

impl ConnectionSettings {
    /// The API listeners' settings.
    pub fn api(limits: &Limits) -> Self {
        Self {
            header_read_timeout: limits.header_read_timeout,
            max_header_bytes: limits.max_header_bytes,
            max_headers: limits.max_headers,
            counted: true,
        }
    }

    /// The metrics listener's settings (not counted towards `max_conn`).
    pub fn metrics(limits: &Limits) -> Self {
        Self {
            counted: false,
            ..Self::api(limits)
        }
    }
}

/// Accepts connections until `stop` says so, then drops the listener (closing it).
pub async fn accept_loop<S>(
    listener: Listener,
    service: S,
    settings: ConnectionSettings,
    live: Arc<Live>,
    graceful: &GracefulShutdown,
    mut stop: watch::Receiver<bool>,
) where
    S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    loop {
        if *stop.borrow() {
            break;
        }
        let accepted = tokio::select! {
            biased;
            _ = stop.changed() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok(Accepted::Tcp(s)) => {
                serve(TokioIo::new(s), service.clone(), settings, &live, graceful)
            }
            Ok(Accepted::Unix(s)) => {
                serve(TokioIo::new(s), service.clone(), settings, &live, graceful)
            }
            Err(e) => {
                tracing::warn!(listener = %listener.describe(), error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
    tracing::debug!(listener = %listener.describe(), "stopped accepting");
}

fn serve<IO, S>(
    io: IO,
    service: S,
    settings: ConnectionSettings,
    live: &Arc<Live>,
    graceful: &GracefulShutdown,
) where
    IO: Read + Write + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let served = Arc::new(AtomicBool::new(false));
    let svc = {
        let served = served.clone();
        let live = live.clone();
        // Counted from its first request on, until it closes (the guard lives in the
        // service, which the connection owns).
        let counted: OnceLock<Option<ConnectionGuard>> = OnceLock::new();
        hyper::service::service_fn(move |req| {
            served.store(true, Ordering::Relaxed);
            counted.get_or_init(|| settings.counted.then(|| live.connection()));
            service.clone().oneshot(req)
        })
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_header_size(settings.max_header_bytes)
        .max_headers(settings.max_headers)
        .max_buf_size(settings.max_header_bytes.max(8192));
    let connection = graceful.watch(builder.serve_connection(io, svc));
    let metrics = live.metrics().clone();
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            if e.is_parse_too_large() {
                metrics.refused(Refusal::HeadersTooLarge);
            } else if e.is_timeout() && !served.load(Ordering::Relaxed) {
                metrics.refused(Refusal::HeaderTimeout);
            }
            tracing::debug!(error = %e, "connection ended with an error");
        }
    });
}
