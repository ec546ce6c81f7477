//! Tokens, secret ids and secret values never appear in logs (captured at TRACE, every
//! target: reqwest and hyper too), `Debug`, `Display` or error messages, against a real
//! OpenBao: AppRole login, writes and reads (whole value and field), a revoked fixed token
//! and a policy denial.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use kms_backend_vault::{VaultAuth, VaultClient, VaultStore};
use kms_core::{KeyName, KeyStore};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn no_token_secret_id_or_value_in_logs_debug_or_errors() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let policy = common::kv_policy().await;
    let (role_id, secret_id) = common::approle(&[&policy], "1h", "1h").await;
    let value = format!("value-{}", common::unique("leak"));
    let mut seen = Vec::new();

    let client = VaultClient::builder(common::addr())
        .auth(VaultAuth::app_role(role_id, secret_id.clone()))
        .build()
        .await
        .unwrap();
    seen.push(format!("{client:?}"));
    let store = VaultStore::builder(client.clone()).build().unwrap();
    seen.push(format!("{store:?} {store}"));
    let base = common::unique("noleak");
    let key = KeyName::new(format!("kms-tests/{base}/k")).unwrap();
    seen.push(format!(
        "{:?}",
        store.store(&key, value.as_str().into()).await
    ));
    let got = store.get(&key).await.unwrap();
    assert_eq!(got.value.expose_str().unwrap(), value);
    seen.push(format!("{got:?}"));
    // A field read of a secret without the field, and a policy denial.
    let field = VaultStore::builder(client.clone())
        .field("password")
        .build()
        .unwrap();
    seen.push(format!("{}", field.get(&key).await.unwrap_err()));
    let denied = KeyName::new(format!("forbidden/{base}")).unwrap();
    seen.push(format!(
        "{:?}",
        store.store(&denied, value.as_str().into()).await
    ));

    // A fixed token that is revoked while in use.
    let token = common::admin(
        "POST",
        "auth/token/create",
        Some(serde_json::json!({"policies": [policy], "ttl": "1h"})),
    )
    .await["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let fixed = VaultClient::builder(common::addr())
        .auth(VaultAuth::token(token.clone()))
        .build()
        .await
        .unwrap();
    seen.push(format!("{fixed:?}"));
    let fixed_store = VaultStore::builder(fixed).build().unwrap();
    fixed_store.get(&key).await.unwrap();
    common::admin(
        "POST",
        "auth/token/revoke",
        Some(serde_json::json!({"token": token})),
    )
    .await;
    let err = fixed_store.get(&key).await.unwrap_err();
    seen.push(format!("{err} {err:?}"));
    seen.push(format!("{:?}", fixed_store.health().await));
    store.remove(&key).await.unwrap();
    drop(_guard);

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "nothing captured"
    );
    seen.push(logs);
    for text in &seen {
        for (what, needle) in [
            ("token", token.as_str()),
            ("secret id", secret_id.as_str()),
            ("value", value.as_str()),
        ] {
            assert!(!text.contains(needle), "the {what} leaked: {text}");
        }
    }
}
