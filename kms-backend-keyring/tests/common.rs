//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use keyring_core::{CredentialStore, Entry, mock};
use kms_backend_keyring::{KeyringBackend, KeyringStore};

/// A lock file unique to this test process (or to the parent named by `KMS_KEYRING_LOCK_PID`,
/// for the writer processes a test spawns) and `tag`.
pub fn lock_file(tag: &str) -> PathBuf {
    let pid =
        std::env::var("KMS_KEYRING_LOCK_PID").unwrap_or_else(|_| std::process::id().to_string());
    std::env::temp_dir().join(format!("kms-keyring-test-{pid}-{tag}.lock"))
}

/// A unique service name, so tests against a shared real keyring never collide.
pub fn unique_service(tag: &str) -> String {
    format!(
        "kms-test-{tag}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    )
}

/// A `KeyringStore` over `store` (a mock, usually) with the given service and lock tag.
pub fn over(store: Arc<CredentialStore>, service: &str, tag: &str) -> KeyringStore {
    KeyringStore::builder(service)
        .backend(KeyringBackend::Custom {
            store,
            max_value_len: 4096,
        })
        .lock_file(lock_file(tag))
        .build_blocking()
        .expect("a custom store always builds")
}

/// Makes the next call on the mock entry `(service, user)` fail with `err`.
pub fn inject(store: &Arc<mock::Store>, service: &str, user: &str, err: keyring_core::Error) {
    use keyring_core::api::CredentialStoreApi;
    let entry: Entry = store.build(service, user, None).unwrap();
    let cred: &mock::Cred = entry.as_any().downcast_ref().unwrap();
    cred.set_error(err);
}

/// Fails the test with a clear message unless the environment variable `var` is set.
pub fn require_env(var: &str, what: &str) {
    if std::env::var_os(var).is_none() {
        panic!(
            "{var} is not set: these tests need {what}. Run them through scripts/test, or by hand \
             under `dbus-run-session -- bash kms-backend-keyring/scripts/keyring-session.sh cargo \
             nextest run -p kms-backend-keyring`"
        );
    }
}
