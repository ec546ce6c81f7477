//! `/metrics` content negotiation: the text format 0.0.4 written from a real registry parses
//! in `promtool check metrics` (Debian's `prometheus` package, next to
//! `KMS_TEST_PROMETHEUS_BIN`), and OpenMetrics is what Prometheus asks for.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use kms_core::{KeyStoreExt, MemoryStore, StoreBuilder};
use kms_metrics::KmsMetrics;
use kms_metrics::exposition::{Format, encode_for};
use kms_metrics::prometheus_client::registry::Registry;

#[tokio::test]
async fn text_0_0_4_passes_promtool_and_openmetrics_is_unchanged() {
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let store = StoreBuilder::new(MemoryStore::new())
        .layer(metrics.layer())
        .layer(metrics.backend_monitor().probe_interval(None))
        .build();
    store.put("k", "v").await.unwrap();
    store.get_value("k").await.unwrap();
    let _ = store.get_value("missing").await;

    let (format, open) = encode_for(
        &registry,
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    )
    .unwrap();
    assert_eq!(format, Format::OpenMetrics);
    assert_eq!(open, common::scrape(&registry));
    assert!(open.ends_with("# EOF\n"));

    let (format, text) = encode_for(&registry, Some("text/plain")).unwrap();
    assert_eq!(format, Format::Text);
    assert!(
        format
            .content_type()
            .starts_with("text/plain; version=0.0.4")
    );
    assert!(text.contains("# TYPE kms_key_operations_total counter\n"));
    assert!(text.contains("# TYPE kms_key_backend_up gauge\n"));
    assert!(!text.contains("# EOF"));

    let prometheus = std::env::var("KMS_TEST_PROMETHEUS_BIN").expect(
        "KMS_TEST_PROMETHEUS_BIN is not set: run the suite through scripts/test (it installs Prometheus)",
    );
    let promtool = std::path::Path::new(&prometheus).with_file_name("promtool");
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", promtool.display()));
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics (parse errors and lint problems):\n{report}\n{text}"
    );
}
