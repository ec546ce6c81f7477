//! The real Linux kernel keyring. Needs a session keyring: run under `keyctl session -`
//! (scripts/test does, through kms-backend-keyring/scripts/keyring-session.sh, and sets
//! `KMS_TEST_KEYUTILS`). Fails, never skips, without it.

mod common;

use common::{lock_file, require_env, unique_service};
use kms_backend_keyring::{KEYUTILS_MAX_VALUE_LEN, KeyringBackend, KeyringStore};
use kms_core::{ErrorKind, KeyName, KeyPrefix, KeyStore, SecretValue};

fn keyutils(service: &str, tag: &str) -> KeyringStore {
    require_env(
        "KMS_TEST_KEYUTILS",
        "a kernel session keyring (keyctl session -)",
    );
    KeyringStore::builder(service)
        .backend(KeyringBackend::KeyUtils)
        .lock_file(lock_file(tag))
        .build_blocking()
        .expect("the kernel keyring store opens")
}

fn fresh(tag: &str) -> KeyringStore {
    keyutils(&unique_service(tag), tag)
}

mod conformance_keyutils {
    use super::*;
    kms_core::conformance_tests!(fresh("conformance"));
}

#[tokio::test]
async fn values_are_in_the_kernel_keyring() {
    let store = fresh("kernel");
    let key = KeyName::new("db/password").unwrap();
    store
        .store(&key, SecretValue::copy_from_slice(b"s3cret"))
        .await
        .unwrap();
    assert_eq!(store.capabilities().max_value_len, KEYUTILS_MAX_VALUE_LEN);
    // The key is visible to keyctl in the session keyring, under service and account.
    let out = std::process::Command::new("keyctl")
        .args(["show", "@s"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains(store.service()) && shown.contains("db/password"),
        "{shown}"
    );
    store.remove(&key).await.unwrap();
    assert_eq!(
        store.get(&key).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn empty_values_are_invalid_input() {
    let store = fresh("empty");
    let e = store
        .store(&KeyName::new("e").unwrap(), SecretValue::new(Vec::new()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_independent_instances_writing_concurrently_lose_no_index_update() {
    let service = unique_service("two-writers");
    let a = keyutils(&service, "two-writers");
    let b = keyutils(&service, "two-writers");
    let mut tasks = Vec::new();
    for i in 0..30 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let key = KeyName::new(format!("k{i}")).unwrap();
            store
                .store(&key, SecretValue::copy_from_slice(b"v"))
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let c = keyutils(&service, "two-writers");
    assert_eq!(c.list(&KeyPrefix::all()).await.unwrap().len(), 30);
}

/// Two OS processes (this test binary, re-run in writer mode) store 200 keys each into one
/// service at the same time, sharing the session keyring and the lock file; the index must
/// list all 400. In writer mode (`KMS_KEYRING_WRITER=<service>|<lock tag>|<first>`) the test is
/// one of those writers and checks each of its own stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_writing_concurrently_lose_no_index_update() {
    const PER_PROCESS: usize = 200;
    if let Ok(spec) = std::env::var("KMS_KEYRING_WRITER") {
        let mut parts = spec.split('|');
        let (service, tag) = (parts.next().unwrap(), parts.next().unwrap());
        let first: usize = parts.next().unwrap().parse().unwrap();
        let store = keyutils(service, tag);
        for i in first..first + PER_PROCESS {
            let key = KeyName::new(format!("p{i}")).unwrap();
            store
                .store(&key, SecretValue::copy_from_slice(b"v"))
                .await
                .unwrap();
        }
        return;
    }
    let service = unique_service("two-processes");
    let tag = "two-processes";
    let store = keyutils(&service, tag);
    let spawn = |first: usize| {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "two_processes_writing_concurrently_lose_no_index_update",
                "--exact",
            ])
            // The lock tag includes the process id: pin the parent's lock file for the children.
            .env("KMS_KEYRING_WRITER", format!("{service}|{tag}|{first}"))
            .env("KMS_KEYRING_LOCK_PID", std::process::id().to_string())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the test binary re-runs itself")
    };
    let children = [spawn(0), spawn(PER_PROCESS)];
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a writer process failed");
    }
    let listed = store.list(&KeyPrefix::all()).await.unwrap();
    assert_eq!(listed.len(), 2 * PER_PROCESS, "{listed:?}");
}
