//! An HTTP service over the full stack: `/metrics` (OpenMetrics text), `/health` (JSON, for a
//! readiness probe), `/summary` (failure analysis JSON) and `/keys/{name}` (read and write).
//!
//! The key endpoints never return secret bytes: a read answers with the value's length and
//! version, as a service proving it can reach its secrets would.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kms_cache::CacheLayer;
use kms_core::{
    CircuitBreakerLayer, ErrorKind, KeyStore, KeyStoreExt, RetryLayer, StoreBuilder, TimeoutLayer,
    ValidateLayer,
};
use kms_metrics::prometheus_client::encoding::text::encode;
use kms_metrics::prometheus_client::registry::Registry;
use kms_metrics::{FailureRecorder, FailureRecorderConfig, KmsMetrics};

/// The service's state: the store stack, the registry it reports into, and the reports.
#[derive(Clone)]
pub struct AppState {
    /// The full stack.
    pub store: Arc<dyn KeyStore>,
    /// The registry `/metrics` encodes.
    pub registry: Arc<Registry>,
    /// Health reports come from here.
    pub metrics: KmsMetrics,
    /// `/summary` comes from here.
    pub recorder: FailureRecorder,
}

/// Knobs of the stack (the defaults are the production reference settings).
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// Health probe interval.
    pub probe_interval: Duration,
    /// Cache TTL.
    pub cache_ttl: Duration,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            probe_interval: Duration::from_secs(15),
            cache_ttl: Duration::from_secs(300),
        }
    }
}

/// Builds the recommended stack over `backend`, instrumented into a fresh registry:
/// metrics → cache → circuit breaker → retry → timeout → backend.
pub fn build_state(backend: impl KeyStore, options: &StackOptions) -> AppState {
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let label = backend.backend();
    let recorder = FailureRecorder::new(FailureRecorderConfig::default());
    let store = StoreBuilder::new(backend)
        .layer(ValidateLayer::new())
        .layer(
            metrics
                .layer()
                .health_probe(Some(options.probe_interval))
                .failure_recorder(recorder.clone()),
        )
        .layer(
            CacheLayer::new()
                .ttl(options.cache_ttl)
                .stale_if_error(Duration::from_secs(900))
                .observer(metrics.cache_observer(label)),
        )
        .resilience(
            CircuitBreakerLayer::new().on_state_change(metrics.circuit_state_recorder(label)),
            RetryLayer::new(),
            TimeoutLayer::new(),
        )
        .build();
    AppState {
        store,
        registry: Arc::new(registry),
        metrics,
        recorder,
    }
}

/// The service's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/summary", get(summary))
        .route("/keys/{*name}", get(read_key).put(write_key))
        .with_state(state)
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut body = String::new();
    if encode(&mut body, &state.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn health(State(state): State<AppState>) -> Response {
    let report = state.metrics.health_report();
    let status = if report.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, report.to_json())
}

async fn summary(State(state): State<AppState>) -> Response {
    json(StatusCode::OK, state.recorder.summary_json())
}

fn error_response(err: &kms_core::Error) -> Response {
    let status = match err.kind() {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::PermissionDenied | ErrorKind::Unauthenticated => StatusCode::FORBIDDEN,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let body = serde_json::json!({ "error": err.kind().as_str(), "message": err.to_string() });
    json(status, body.to_string())
}

async fn read_key(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match state
        .store
        .get_opt(&match kms_core::KeyName::new(&name) {
            Ok(k) => k,
            Err(e) => return error_response(&e),
        })
        .await
    {
        Ok(Some(secret)) => {
            let body = serde_json::json!({
                "name": name,
                "bytes": secret.value.len(),
                "version": secret.meta.version.as_deref(),
            });
            json(StatusCode::OK, body.to_string())
        }
        Ok(None) => error_response(&kms_core::Error::new(
            ErrorKind::NotFound,
            format!("key '{name}' does not exist"),
        )),
        Err(e) => error_response(&e),
    }
}

async fn write_key(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    match state.store.put(&name, body.to_vec()).await {
        Ok(meta) => json(
            StatusCode::OK,
            serde_json::json!({ "name": name, "version": meta.version.as_deref() }).to_string(),
        ),
        Err(e) => error_response(&e),
    }
}
