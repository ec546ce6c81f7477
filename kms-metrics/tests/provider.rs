//! `InstrumentedProvider`: what a wrapped `CryptoProvider` exports, checked on the encoded text a
//! Prometheus scrape reads, and what its audit events and spans say.

mod common;

use std::sync::Arc;

use kms_core::{
    CryptoProvider, DataKey, EncryptionContext, Error, ErrorKind, LocalKeyProvider, Result,
    SecretValue, async_trait,
};
use kms_metrics::prometheus_client::registry::Registry;
use kms_metrics::{AUDIT_TARGET, KmsMetrics};

use common::{Captured, scrape, value};

fn ops(text: &str, backend: &str, op: &str, status: &str) -> f64 {
    value(
        text,
        &format!(
            r#"kms_key_operations_total{{operation="{op}",backend="{backend}",store="{backend}",status="{status}"}}"#
        ),
    )
}

fn errors(text: &str, backend: &str, op: &str, kind: &str) -> f64 {
    value(
        text,
        &format!(
            r#"kms_key_operation_errors_total{{operation="{op}",backend="{backend}",store="{backend}",kind="{kind}"}}"#
        ),
    )
}

fn context() -> EncryptionContext {
    EncryptionContext::new().with("tenant", "acme-corp-tenant")
}

#[tokio::test]
async fn local_provider_calls_are_counted_by_operation_and_outcome() {
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let provider = metrics.instrument_provider(LocalKeyProvider::generate());
    assert_eq!(provider.provider(), "local");
    assert_eq!(provider.to_string(), "Instrumented(LocalKeyProvider)");

    let ctx = context();
    let sealed = provider
        .encrypt(&SecretValue::from("plain-TOPSECRET"), &ctx)
        .await
        .unwrap();
    let opened = provider.decrypt(&sealed, &ctx).await.unwrap();
    assert_eq!(opened.expose_secret(), b"plain-TOPSECRET");
    let key = provider.generate_data_key(&ctx).await.unwrap();
    provider.decrypt(&key.ciphertext, &ctx).await.unwrap();
    // Another context: the ciphertext does not decrypt.
    let err = provider
        .decrypt(&sealed, &EncryptionContext::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert_eq!(
        provider.inner().calls(kms_core::CryptoOperation::Decrypt),
        3
    );

    let text = scrape(&registry);
    assert_eq!(ops(&text, "local", "encrypt", "success"), 1.0);
    assert_eq!(ops(&text, "local", "encrypt", "failure"), 0.0);
    assert_eq!(ops(&text, "local", "decrypt", "success"), 2.0);
    assert_eq!(ops(&text, "local", "decrypt", "failure"), 1.0);
    assert_eq!(ops(&text, "local", "generate_data_key", "success"), 1.0);
    assert_eq!(errors(&text, "local", "decrypt", "invalid_data"), 1.0);
    assert_eq!(
        value(
            &text,
            r#"kms_key_operation_duration_seconds_count{operation="decrypt",backend="local",store="local"}"#
        ),
        3.0
    );
    assert_eq!(
        value(
            &text,
            r#"kms_key_operation_duration_seconds_count{operation="generate_data_key",backend="local",store="local"}"#
        ),
        1.0
    );
    assert!(
        !text.contains("acme") && !text.contains("TOPSECRET"),
        "no context, no plaintext in labels:\n{text}"
    );
}

/// A provider whose every call fails with the kind it is given.
#[derive(Debug)]
struct Failing(ErrorKind);

impl std::fmt::Display for Failing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Failing")
    }
}

#[async_trait]
impl CryptoProvider for Failing {
    fn provider(&self) -> &'static str {
        "failing_kms"
    }
    async fn encrypt(&self, _: &SecretValue, _: &EncryptionContext) -> Result<Vec<u8>> {
        Err(Error::new(self.0, "encrypt failed"))
    }
    async fn decrypt(&self, _: &[u8], _: &EncryptionContext) -> Result<SecretValue> {
        Err(Error::new(self.0, "decrypt failed"))
    }
    async fn generate_data_key(&self, _: &EncryptionContext) -> Result<DataKey> {
        Err(Error::new(self.0, "generate_data_key failed"))
    }
}

#[tokio::test]
async fn failures_are_counted_by_kind_and_audited_without_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let unavailable = metrics.instrument_provider(Failing(ErrorKind::Unavailable));
    let denied = metrics.instrument_provider(Arc::new(Failing(ErrorKind::PermissionDenied)));
    let ctx = context();
    let ciphertext = b"CIPHERTEXT-BYTES".to_vec();

    for _ in 0..2 {
        assert!(
            unavailable
                .encrypt(&SecretValue::from("plain-TOPSECRET"), &ctx)
                .await
                .is_err()
        );
    }
    assert!(unavailable.generate_data_key(&ctx).await.is_err());
    assert!(denied.decrypt(&ciphertext, &ctx).await.is_err());

    let text = scrape(&registry);
    assert_eq!(ops(&text, "failing_kms", "encrypt", "failure"), 2.0);
    assert_eq!(ops(&text, "failing_kms", "encrypt", "success"), 0.0);
    assert_eq!(
        ops(&text, "failing_kms", "generate_data_key", "failure"),
        1.0
    );
    assert_eq!(ops(&text, "failing_kms", "decrypt", "failure"), 1.0);
    assert_eq!(errors(&text, "failing_kms", "encrypt", "unavailable"), 2.0);
    assert_eq!(
        errors(&text, "failing_kms", "generate_data_key", "unavailable"),
        1.0
    );
    assert_eq!(
        errors(&text, "failing_kms", "decrypt", "permission_denied"),
        1.0
    );

    let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let audit: Vec<&str> = out.lines().filter(|l| l.contains(AUDIT_TARGET)).collect();
    assert_eq!(audit.len(), 4, "one audit event per failure:\n{out}");
    assert!(
        audit[0].contains("operation=\"encrypt\"")
            && audit[0].contains("backend=\"failing_kms\"")
            && audit[0].contains("error_kind=\"unavailable\""),
        "{out}"
    );
    assert!(
        audit[3].contains("error_kind=\"permission_denied\""),
        "{out}"
    );
    // Spans: one per call, named after the operation, with the outcome fields.
    assert!(out.contains("kms.encrypt"), "{out}");
    assert!(out.contains("kms.decrypt"), "{out}");
    assert!(out.contains("kms.generate_data_key"), "{out}");
    assert!(
        out.contains("outcome=\"failure\"") || out.contains("outcome=failure"),
        "{out}"
    );
    // Never plaintext, ciphertext bytes or the encryption context.
    for secret in ["TOPSECRET", "CIPHERTEXT", "acme", "tenant"] {
        assert!(!out.contains(secret), "{secret} leaked:\n{out}");
    }
}

/// A KMS whose outage the test switches on and off.
#[derive(Debug, Default)]
struct Switchable {
    down: std::sync::atomic::AtomicBool,
}

impl std::fmt::Display for Switchable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Switchable")
    }
}

impl Switchable {
    fn check(&self) -> Result<()> {
        if self.down.load(std::sync::atomic::Ordering::Relaxed) {
            Err(
                Error::new(ErrorKind::Unavailable, "kms endpoint unreachable")
                    .with_backend("aws_kms"),
            )
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl CryptoProvider for Switchable {
    fn provider(&self) -> &'static str {
        "aws_kms"
    }
    async fn encrypt(&self, _: &SecretValue, _: &EncryptionContext) -> Result<Vec<u8>> {
        self.check().map(|()| b"sealed".to_vec())
    }
    async fn decrypt(&self, _: &[u8], _: &EncryptionContext) -> Result<SecretValue> {
        self.check().map(|()| SecretValue::from("plain"))
    }
    async fn generate_data_key(&self, ctx: &EncryptionContext) -> Result<DataKey> {
        self.check()?;
        LocalKeyProvider::generate().generate_data_key(ctx).await
    }
}

/// 50 failing generate-data-key/decrypt calls put the provider in the
/// health report and `backend_up{backend="aws_kms"}` at 0; its probe (a data key generation)
/// sees it come back.
#[tokio::test(start_paused = true)]
async fn a_provider_outage_shows_in_backend_up_and_health() {
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let provider = Arc::new(metrics.instrument_provider(Switchable::default()));
    provider.spawn_probe(
        std::time::Duration::from_secs(15),
        std::time::Duration::from_secs(5),
    );
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    assert_eq!(
        metrics.backend_up("aws_kms"),
        Some(true),
        "the first probe ran"
    );

    provider
        .inner()
        .down
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let ctx = context();
    for _ in 0..25 {
        assert!(provider.generate_data_key(&ctx).await.is_err());
        assert!(provider.decrypt(b"x", &ctx).await.is_err());
    }
    let text = scrape(&registry);
    assert_eq!(
        value(
            &text,
            r#"kms_key_backend_up{backend="aws_kms",store="aws_kms"}"#
        ),
        0.0
    );
    assert_eq!(ops(&text, "aws_kms", "decrypt", "failure"), 25.0);
    let report = metrics.health_report();
    assert_eq!(report.status, kms_metrics::HealthStatus::Down);
    assert_eq!(report.backends[0].backend, "aws_kms");
    assert_eq!(report.backends[0].last_error_kind, Some("unavailable"));
    assert!(
        report.backends[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("kms endpoint unreachable")
    );

    // Back: the next probe (15 s later) marks it up without any call from the service.
    provider
        .inner()
        .down
        .store(false, std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(std::time::Duration::from_secs(15)).await;
    assert_eq!(metrics.backend_up("aws_kms"), Some(true));
    let report = metrics.health_report();
    assert_eq!(report.status, kms_metrics::HealthStatus::Ok);
    assert!(report.backends[0].probe_latency_ms.is_some());
    // Probes are not operations.
    assert_eq!(
        ops(
            &scrape(&registry),
            "aws_kms",
            "generate_data_key",
            "success"
        ),
        0.0
    );
}

/// As for stores, a decrypt given up on is `abandoned`.
#[tokio::test(start_paused = true)]
async fn an_abandoned_provider_call_is_counted() {
    #[derive(Debug)]
    struct Hanging;
    impl std::fmt::Display for Hanging {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Hanging")
        }
    }
    #[async_trait]
    impl CryptoProvider for Hanging {
        fn provider(&self) -> &'static str {
            "hanging"
        }
        async fn encrypt(&self, _: &SecretValue, _: &EncryptionContext) -> Result<Vec<u8>> {
            std::future::pending().await
        }
        async fn decrypt(&self, _: &[u8], _: &EncryptionContext) -> Result<SecretValue> {
            std::future::pending().await
        }
        async fn generate_data_key(&self, _: &EncryptionContext) -> Result<DataKey> {
            std::future::pending().await
        }
    }
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let provider = metrics.instrument_provider(Hanging);
    let ctx = context();
    let call = provider.decrypt(b"x", &ctx);
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(50), call)
            .await
            .is_err()
    );
    assert_eq!(
        ops(&scrape(&registry), "hanging", "decrypt", "abandoned"),
        1.0
    );
}
