//! `KMS_STORES__…` / `KMS_DEFAULT` override the file (applied with `with_vars`, so tests never
//! touch the process environment).

use kms::{Config, ErrorKind, KeyStoreExt};

const FILE: &str = r#"
[stores.payments.memory]
max_versions = 5

[stores.payments.cache]
ttl = "5m"

[stores.signing.memory]
"#;

#[tokio::test]
async fn variables_override_and_extend_the_file() {
    let config = Config::from_toml_str(FILE)
        .unwrap()
        .with_vars([
            ("KMS_STORES__PAYMENTS__CACHE__TTL", "10m"),
            ("KMS_STORES__PAYMENTS__CACHE__MAX_ENTRIES", "50"),
            ("KMS_STORES__PAYMENTS__RETRY__MAX_RETRIES", "1"),
            ("KMS_STORES__AUDIT__URI", "memory://?max_versions=2"),
            ("KMS_STORES__AUDIT__TIMEOUT__ALL", "2s"),
            ("KMS_DEFAULT", "payments"),
            // Not overrides: ignored.
            ("KMS_STORE", "memory://"),
            ("KMS_TEST_VAULT_ADDR", "http://127.0.0.1:8200"),
            ("PATH", "/usr/bin"),
        ])
        .unwrap();
    let payments = config.store("payments").unwrap();
    let cache = payments.cache.as_ref().unwrap();
    assert_eq!(cache.ttl, Some(std::time::Duration::from_secs(600)));
    assert_eq!(cache.max_entries, Some(50));
    assert_eq!(payments.memory.as_ref().unwrap().max_versions, Some(5));
    assert_eq!(payments.retry.as_ref().unwrap().max_retries, Some(1));
    assert_eq!(
        config.store_names().collect::<Vec<_>>(),
        ["audit", "payments", "signing"]
    );
    assert_eq!(config.default_store(), Some("payments"));
    let audit = config.open("audit").await.unwrap();
    assert_eq!(audit.to_string(), "Timeout(Memory)");
    let default = config.open_default().await.unwrap();
    assert_eq!(default.to_string(), "Cache(Retry(Memory))");
    default.put("k", "v").await.unwrap();
}

#[test]
fn bad_values_from_the_environment_name_the_key() {
    let err = Config::from_toml_str(FILE)
        .unwrap()
        .with_vars([("KMS_STORES__PAYMENTS__CACHE__TTL", "5 minutes")])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(
        err.message().contains("`stores.payments.cache.ttl`")
            && err.message().contains("5 minutes"),
        "{err}"
    );
    let err = Config::from_toml_str(FILE)
        .unwrap()
        .with_vars([("KMS_STORES__PAYMENTS__CACHE__TTLL", "5m")])
        .unwrap_err();
    assert!(err.message().contains("unknown field `ttll`"), "{err}");
}

#[test]
fn malformed_variable_names_are_errors() {
    for name in [
        "KMS_STORES__PAYMENTS",
        "KMS_STORES____CACHE__TTL",
        "KMS_STORES__PAYMENTS____TTL",
    ] {
        let err = Config::from_toml_str(FILE)
            .unwrap()
            .with_vars([(name, "1")])
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{name}");
        assert!(err.message().contains(name), "{name}: {err}");
    }
    // A key inside something that is not a table.
    let err = Config::from_toml_str(FILE)
        .unwrap()
        .with_vars([("KMS_STORES__PAYMENTS__CACHE__TTL__X", "1")])
        .unwrap_err();
    assert!(
        err.message().contains("`stores.payments.cache.ttl`"),
        "{err}"
    );
}

#[test]
fn from_file_reads_a_file_and_names_it_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kms.toml");
    std::fs::write(&path, FILE).unwrap();
    let config = Config::from_file(&path).unwrap();
    assert_eq!(config.store_names().count(), 2);
    std::fs::write(&path, "[stores.p.cache]\nttl = \"soon\"\n").unwrap();
    let err = Config::from_file(&path).unwrap_err();
    assert!(
        err.message().contains("`stores.p.cache.ttl`")
            && err.message().contains(&path.display().to_string()),
        "{err}"
    );
    let err = Config::from_file(dir.path().join("missing.toml")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
}

/// `Config::from_env` reads the real process environment, so it runs in a child process of
/// this test binary with the variables set (tests never change their own environment).
#[test]
fn from_env_reads_the_file_named_by_kms_config_then_the_overrides() {
    const CHILD: &str = "KMS_TEST_FROM_ENV_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let config = Config::from_env().unwrap();
        let cache = config.store("payments").unwrap().cache.clone().unwrap();
        assert_eq!(cache.ttl, Some(std::time::Duration::from_secs(600)));
        assert_eq!(config.default_store(), Some("signing"));
        println!("child checked from_env");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kms.toml");
    std::fs::write(&path, FILE).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "from_env_reads_the_file_named_by_kms_config_then_the_overrides",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("KMS_CONFIG", &path)
        .env("KMS_STORES__PAYMENTS__CACHE__TTL", "10m")
        .env("KMS_DEFAULT", "signing")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("child checked from_env"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Counts warnings on `kms::config` naming `variable` while `f` runs on this thread.
fn warnings_naming<R>(variable: &str, f: impl FnOnce() -> R) -> (usize, R) {
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    struct Capture(Arc<Mutex<Vec<String>>>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
        fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            struct Fields(String);
            impl tracing::field::Visit for Fields {
                fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                    self.0.push_str(&format!("{}={v:?} ", f.name()));
                }
                fn record_str(&mut self, f: &tracing::field::Field, v: &str) {
                    self.0.push_str(&format!("{}={v} ", f.name()));
                }
            }
            if e.metadata().target() == "kms::config"
                && *e.metadata().level() == tracing::Level::WARN
            {
                let mut fields = Fields(String::new());
                e.record(&mut fields);
                self.0.lock().unwrap().push(fields.0);
            }
        }
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(Capture(seen.clone()));
    let out = tracing::subscriber::with_default(subscriber, f);
    let n = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.contains(&format!("variable={variable} ")))
        .count();
    (n, out)
}

#[test]
fn other_kms_variables_are_named_in_a_warning_unless_a_reference_reads_them() {
    // Not configuration-shaped and not referenced: accepted, with a warning naming it.
    let (n, config) = warnings_naming("KMS_MASTER_KEY", || {
        Config::from_toml_str(FILE)
            .unwrap()
            .with_vars([("KMS_MASTER_KEY", "AAEC")])
    });
    assert!(config.is_ok());
    assert_eq!(n, 1);
    // Named by an `env:` reference of the configuration: read, so no warning.
    let (n, config) = warnings_naming("KMS_MASTER_KEY", || {
        Config::from_toml_str(
            "[stores.s.memory]\n[stores.s.envelope]\nprovider = \"local\"\nmaster_key = \"env:KMS_MASTER_KEY\"\n",
        )
        .unwrap()
        .with_vars([("KMS_MASTER_KEY", "AAEC")])
    });
    assert!(config.is_ok());
    assert_eq!(n, 0);
    // Named by a reference inside the CLI's store URI: read too.
    let (n, config) = warnings_naming("KMS_VAULT_SECRET", || {
        Config::from_toml_str(FILE).unwrap().with_vars([
            (
                "KMS_STORE",
                "vault+https://v.example/secret?auth.token=env:KMS_VAULT_SECRET",
            ),
            ("KMS_VAULT_SECRET", "S3CRET"),
        ])
    });
    assert!(config.is_ok(), "{config:?}");
    assert_eq!(n, 0);
    // The workspace's own variables are read elsewhere: no warning.
    let (n, _) = warnings_naming("KMS_TOOLS", || {
        Config::from_toml_str(FILE)
            .unwrap()
            .with_vars([("KMS_TOOLS", "/root/.cache/kms-test-tools")])
            .unwrap()
    });
    assert_eq!(n, 0);
}
