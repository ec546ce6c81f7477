//! The instrumentation layer's spans exported through `tracing-opentelemetry`.
//!
//! `cargo run -p kms-examples --bin otel`

use kms_core::{KeyStoreExt, MemoryStore, StoreBuilder};
use kms_metrics::KmsMetrics;
use kms_metrics::prometheus_client::registry::Registry;

#[tokio::main]
async fn main() -> Result<(), kms_core::Error> {
    let (subscriber, provider, exporter) = kms_examples::otel::subscriber();
    let _guard = tracing::subscriber::set_default(subscriber);

    let metrics = KmsMetrics::register(&mut Registry::default());
    let store = StoreBuilder::new(MemoryStore::new())
        .layer(metrics.layer().health_probe(None).audit(false))
        .build();
    store.put("db/password", "s3cret").await?;
    store.get_value("db/password").await?;
    let _ = store.get_value("db/missing").await;

    let _ = provider.force_flush();
    for (name, attributes) in kms_examples::otel::kms_spans(&exporter) {
        println!("{name:<10} {}", attributes.join(" "));
    }
    Ok(())
}
