//! The real Secret Service (gnome-keyring-daemon over D-Bus). Needs an unlocked daemon on the
//! session bus: scripts/test provides one through kms-backend-keyring/scripts/keyring-session.sh
//! and sets `KMS_TEST_SECRET_SERVICE`. Fails, never skips, without it.

mod common;

use std::process::Command;

use common::{lock_file, require_env, unique_service};
use kms_backend_keyring::{KeyringBackend, KeyringStore};
use kms_core::{KeyName, KeyPrefix, KeyStore, SecretValue};

fn secret_service(service: &str, tag: &str) -> KeyringStore {
    require_env(
        "KMS_TEST_SECRET_SERVICE",
        "an unlocked Secret Service (gnome-keyring-daemon) on a D-Bus session",
    );
    KeyringStore::builder(service)
        .backend(KeyringBackend::SecretService)
        .lock_file(lock_file(tag))
        .build_blocking()
        .expect("the Secret Service store opens")
}

fn fresh(tag: &str) -> KeyringStore {
    secret_service(&unique_service(tag), tag)
}

mod conformance_secret_service {
    use super::*;
    kms_core::conformance_tests!(fresh("conformance"));
}

#[tokio::test]
async fn a_value_stored_from_rust_is_read_by_secret_tool() {
    let store = fresh("interop-out");
    let key = KeyName::new("app/token").unwrap();
    store
        .store(&key, SecretValue::copy_from_slice(b"tok-123"))
        .await
        .unwrap();
    let out = Command::new("secret-tool")
        .args([
            "lookup",
            "service",
            store.service(),
            "username",
            "app/token",
        ])
        .output()
        .expect("secret-tool runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"tok-123");
    store.remove(&key).await.unwrap();
}

#[tokio::test]
async fn a_value_stored_by_secret_tool_is_read_from_rust() {
    use std::io::Write;
    let store = fresh("interop-in");
    let mut child = Command::new("secret-tool")
        .args([
            "store",
            "--label=kms test",
            "service",
            store.service(),
            "username",
            "from/cli",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("secret-tool runs");
    child.stdin.take().unwrap().write_all(b"cli-value").unwrap();
    assert!(child.wait().unwrap().success());
    let key = KeyName::new("from/cli").unwrap();
    assert_eq!(
        store.get(&key).await.unwrap().value.expose_secret(),
        b"cli-value"
    );
    // Not stored through the store, so not in its index.
    assert!(store.list(&KeyPrefix::all()).await.unwrap().is_empty());
}

/// Without a reachable D-Bus session the store does not open, with `Unavailable` and a message
/// that says why. Runs the check in a child (this binary, re-run with `KMS_KEYRING_NO_DBUS=1`
/// and a session bus address that points nowhere), since the environment is per process.
#[test]
fn no_dbus_session_is_unavailable_with_a_clear_message() {
    if std::env::var_os("KMS_KEYRING_NO_DBUS").is_some() {
        let err = KeyringStore::builder("kms-test-no-dbus")
            .backend(KeyringBackend::SecretService)
            .build_blocking()
            .unwrap_err();
        assert_eq!(err.kind(), kms_core::ErrorKind::Unavailable, "{err}");
        assert!(
            err.message().contains("opening the secret-service keyring"),
            "{err}"
        );
        assert!(err.message().contains("D-Bus"), "{err}");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "no_dbus_session_is_unavailable_with_a_clear_message",
            "--exact",
        ])
        .env("KMS_KEYRING_NO_DBUS", "1")
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/kms-test-bus",
        )
        .output()
        .expect("the test binary re-runs itself");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
}
