//! An HTTP service over the full stack on the in-memory store: `/metrics`, `/health/live`,
//! `/health/ready`, `/summary?timeframeHours=N`, `/keys/{name}` (see `kms_examples::service`).
//!
//! `cargo run -p kms-examples --bin service -- 127.0.0.1:8080`, then e.g.
//! `curl -X PUT --data s3cret 127.0.0.1:8080/keys/db/password`,
//! `curl 127.0.0.1:8080/keys/db/password`, `curl 127.0.0.1:8080/metrics`,
//! `curl '127.0.0.1:8080/summary?timeframeHours=1'`.

use kms_core::MemoryStore;
use kms_examples::service::{StackOptions, build_state, router};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let state =
        build_state(MemoryStore::new(), &StackOptions::default()).map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
