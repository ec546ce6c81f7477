//! The OS keyring opened from a URI and from TOML: the Linux kernel keyring (and the Secret
//! Service), with validate + cache + resilience + metrics from the same text, through the
//! conformance suite. Needs the keyring session (`KMS_TEST_KEYUTILS`,
//! `KMS_TEST_SECRET_SERVICE`): run under `dbus-run-session -- bash
//! kms-backend-keyring/scripts/keyring-session.sh cargo nextest run -p kms` (scripts/test does).
//! Fails, never skips, without it.

mod common;

use kms::{Config, KeyStoreExt};

fn require(var: &str, what: &str) {
    assert!(
        std::env::var_os(var).is_some(),
        "{var} is not set: these tests need {what}. Run them under `dbus-run-session -- bash \
         kms-backend-keyring/scripts/keyring-session.sh cargo nextest run -p kms`"
    );
}

/// A lock file in the keyring session's private runtime directory (`XDG_RUNTIME_DIR`, which
/// keyring-session.sh removes when the run ends), so a test run leaves no lock files behind.
fn lock_file(tag: &str) -> String {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("kms-facade-test-{}-{tag}.lock", std::process::id()))
        .display()
        .to_string()
}

fn service(tag: &str) -> String {
    common::unique(&format!("kms-facade-{tag}")).replace('/', "-")
}

fn uri() -> String {
    require("KMS_TEST_KEYUTILS", "a kernel session keyring");
    format!(
        "keyring://{}?platform_store=keyutils&lock_file={}&{}",
        service("uri"),
        lock_file("uri"),
        common::layer_query("kms_facade_keyring_uri")
    )
}

fn toml(platform_store: &str) -> String {
    format!(
        r#"
[stores.k.keyring]
service = "{}"
platform_store = "{platform_store}"
lock_file = "{}"
{}"#,
        service("toml"),
        lock_file(platform_store),
        common::layer_toml("k", "kms_facade_keyring_toml")
    )
}

mod keyutils_from_uri {
    use super::*;
    kms_core::conformance_tests!(kms::open(&uri()).await.expect("opens"));
}

mod keyutils_from_toml {
    use super::*;
    kms_core::conformance_tests!({
        require("KMS_TEST_KEYUTILS", "a kernel session keyring");
        Config::from_toml_str(&toml("keyutils"))
            .expect("parses")
            .open("k")
            .await
            .expect("opens")
    });
}

mod secret_service_from_toml {
    use super::*;
    kms_core::conformance_tests!({
        require(
            "KMS_TEST_SECRET_SERVICE",
            "a Secret Service on the session bus",
        );
        Config::from_toml_str(&toml("secret-service"))
            .expect("parses")
            .open("k")
            .await
            .expect("opens")
    });
}

#[tokio::test]
async fn values_land_in_the_kernel_keyring_under_the_service() {
    observes!("keyring.service", "keyring.platform_store");
    let uri = uri();
    let store = kms::open(&uri).await.unwrap();
    assert!(store.to_string().contains("Keyring"), "{store}");
    store.put("db/password", "s3cret").await.unwrap();
    let out = std::process::Command::new("keyctl")
        .args(["show", "@s"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("kms-facade-uri") && shown.contains("db/password"),
        "{shown}"
    );
    store.delete("db/password").await.unwrap();
}

#[tokio::test]
async fn the_lock_file_is_where_it_is_configured() {
    observes!("keyring.lock_file");
    require("KMS_TEST_KEYUTILS", "a kernel session keyring");
    let lock = lock_file("effect");
    let _ = std::fs::remove_file(&lock);
    let store = kms::open(&format!(
        "keyring://{}?platform_store=keyutils&lock_file={lock}",
        service("lock")
    ))
    .await
    .unwrap();
    store.put("k", "v").await.unwrap();
    assert!(
        std::path::Path::new(&lock).exists(),
        "an index update took the lock file {lock}"
    );
    store.delete("k").await.unwrap();
}
