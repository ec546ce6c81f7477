//! An HTTP service over the full stack, with the endpoints an SRE needs:
//!
//! | endpoint | for | answers |
//! |---|---|---|
//! | `GET /health/live` | Kubernetes **liveness** | 200 while the process serves HTTP; never looks at backends (restarting pods does not unseal Vault) |
//! | `GET /health/ready` (and `/health`) | Kubernetes **readiness** | the health report (JSON); 200 for `ok` and `degraded` (a backend is down but the cache serves), 503 only for `down` |
//! | `GET /metrics` | Prometheus scrapes, and **alerting** (`monitoring/alerts.yml`) | OpenMetrics or text 0.0.4, as the `Accept` header asks |
//! | `GET /summary?timeframeHours=N` | people, during and after an incident | seed 000's failure summary over the last N hours (default 24) |
//! | `GET`/`PUT /keys/{name}` | the service's own work | a read answers with the value's length and version, never its bytes |
//! | `POST /rotate/{name}` | rotating a key (`kms_core::rotation::Rotation`, counted by `kms_metrics::RotationMetrics`) | the versions replaced and written, never a value |

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kms_cache::CacheLayer;
use kms_core::{
    CircuitBreakerHandle, CircuitBreakerLayer, ErrorKind, KeyStore, KeyStoreExt, RetryLayer,
    StoreBuilder, TimeoutLayer, ValidateLayer,
};
use kms_metrics::exposition::encode_for;
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
    /// The circuit breaker in front of the backend.
    pub breaker: CircuitBreakerHandle,
    /// Rotations report here (`<p>_key_rotations_total`, the last rotation's time, audit).
    pub rotations: Arc<kms_metrics::RotationMetrics>,
}

/// Knobs of the stack (the defaults are the production reference settings).
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// Health probe interval.
    pub probe_interval: Duration,
    /// Cache TTL.
    pub cache_ttl: Duration,
    /// How long an expired entry may still be served while the backend fails.
    pub stale_if_error: Duration,
    /// The `store` label (default: the backend label); see `kms_metrics::StoreName`.
    pub store_name: Option<String>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            probe_interval: Duration::from_secs(15),
            cache_ttl: Duration::from_secs(300),
            stale_if_error: Duration::from_secs(900),
            store_name: None,
        }
    }
}

/// Builds the recommended stack over `backend`, instrumented into a fresh registry:
/// validate → metrics → cache → circuit breaker → retry (inside the backend monitor, which
/// counts its retries) → backend monitor → timeout → backend. The cache reads the monitor's
/// health signal: while the backend is known down, stale reads are answered at once.
///
/// # Errors
///
/// [`ErrorKind::Configuration`] when `options.store_name` is not a valid store name.
pub fn build_state(backend: impl KeyStore, options: &StackOptions) -> kms_core::Result<AppState> {
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let label = backend.backend();
    let store_name = options
        .store_name
        .as_deref()
        .map(|n| metrics.store_name(n))
        .transpose()?;
    let recorder = FailureRecorder::new(FailureRecorderConfig::default());
    let breaker = CircuitBreakerLayer::new();
    let mut service_side = metrics.layer().failure_recorder(recorder.clone());
    let mut monitor = metrics
        .backend_monitor()
        .probe_interval(Some(options.probe_interval))
        .circuit_breaker(&breaker.handle());
    if let Some(name) = &store_name {
        service_side = service_side.store(name.clone());
        monitor = monitor.store(name.clone());
    }
    let backend_down = monitor.health_signal();
    let store = StoreBuilder::new(backend)
        .layer(ValidateLayer::new())
        .layer(service_side)
        .layer(
            CacheLayer::new()
                .ttl(options.cache_ttl)
                .stale_if_error(options.stale_if_error)
                .observer(metrics.cache_observer_for(label, store_name.as_ref()))
                .health_signal(backend_down),
        )
        .layer(breaker.clone())
        .layer(RetryLayer::new()) // opens the call context the monitor counts retries from
        .layer(monitor)
        .layer(TimeoutLayer::new())
        .build();
    let rotations = metrics.rotation_observer(label, store_name.as_ref());
    Ok(AppState {
        store,
        registry: Arc::new(registry),
        rotations,
        metrics,
        recorder,
        breaker: breaker.handle(),
    })
}

/// The service's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(ready))
        .route("/health/ready", get(ready))
        .route("/health/live", get(live))
        .route("/summary", get(summary))
        .route("/keys/{*name}", get(read_key).put(write_key))
        .route("/rotate/{*name}", post(rotate_key))
        .with_state(state)
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    match encode_for(&state.registry, accept) {
        Ok((format, body)) => {
            ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn live() -> Response {
    json(StatusCode::OK, r#"{"status":"alive"}"#.to_owned())
}

async fn ready(State(state): State<AppState>) -> Response {
    let report = state.metrics.health_report();
    let status = if report.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, report.to_json())
}

/// The `timeframeHours` parameter of a query string (seed 000's name), 24 when absent;
/// `None` when it is not a number.
fn timeframe_hours(query: Option<&str>) -> Option<f64> {
    let value = query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("timeframeHours="));
    value.map_or(Some(24.0), |v| v.parse().ok())
}

async fn summary(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let hours = timeframe_hours(query.as_deref()).unwrap_or(f64::NAN);
    if !(hours.is_finite() && hours > 0.0 && hours <= 24.0) {
        let body = serde_json::json!({
            "error": "invalid_input",
            "message": "timeframeHours must be a number of hours above 0 and at most 24",
        });
        return json(StatusCode::BAD_REQUEST, body.to_string());
    }
    let timeframe = Duration::from_secs_f64(hours * 3600.0);
    json(StatusCode::OK, state.recorder.summary_json(timeframe))
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
    let key = match kms_core::KeyName::new(&name) {
        Ok(k) => k,
        Err(e) => return error_response(&e),
    };
    match state.store.get_opt(&key).await {
        Ok(Some(secret)) => {
            let body = serde_json::json!({
                "name": name,
                "bytes": secret.value.len(),
                "version": secret.meta.version.as_deref(),
            });
            json(StatusCode::OK, body.to_string())
        }
        Ok(None) => error_response(&kms_core::Error::not_found(&key)),
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

async fn rotate_key(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    let key = match kms_core::KeyName::new(&name) {
        Ok(k) => k,
        Err(e) => return error_response(&e),
    };
    let rotation = kms_core::rotation::Rotation::new().observer(state.rotations.clone());
    match rotation.run(state.store.as_ref(), &key).await {
        Ok(done) => json(
            StatusCode::OK,
            serde_json::json!({
                "name": name,
                "previous_version": done.previous.version.as_deref(),
                "version": done.current.version.as_deref(),
            })
            .to_string(),
        ),
        Err(e) => error_response(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::timeframe_hours;

    #[test]
    fn the_timeframe_parameter_is_seed_000s() {
        assert_eq!(timeframe_hours(None), Some(24.0));
        assert_eq!(timeframe_hours(Some("timeframeHours=1")), Some(1.0));
        assert_eq!(timeframe_hours(Some("x=2&timeframeHours=0.5")), Some(0.5));
        assert_eq!(timeframe_hours(Some("timeframeHours=soon")), None);
    }
}
