//! Exporting the instrumentation layer's spans to OpenTelemetry through `tracing-opentelemetry`.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt;

/// A subscriber that sends every `tracing` span to an OpenTelemetry tracer whose spans land in
/// the returned in-memory exporter (swap it for an OTLP exporter in a real service).
pub fn subscriber() -> (
    impl tracing::Subscriber + Send + Sync,
    SdkTracerProvider,
    InMemorySpanExporter,
) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("kms-examples");
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
    (subscriber, provider, exporter)
}

/// The `kms.*` spans the exporter received: name and attributes as `key=value` strings.
pub fn kms_spans(exporter: &InMemorySpanExporter) -> Vec<(String, Vec<String>)> {
    exporter
        .get_finished_spans()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.name.starts_with("kms."))
        .map(|s| {
            let attributes = s
                .attributes
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect();
            (s.name.to_string(), attributes)
        })
        .collect()
}
