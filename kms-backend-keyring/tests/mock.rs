//! Every error path and the index logic, over `keyring_core::mock` with its error injection.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::{Cleaned, Cleanup, inject, lock_file, over};
use keyring_core::api::{CredentialApi, CredentialStoreApi};
use keyring_core::{Credential, Entry, mock};
use std::time::{Duration, Instant};

use kms_backend_keyring::{INDEX_ACCOUNT, KeyringBackend, KeyringStore, MAX_INDEX_SHARDS};
use kms_core::{ErrorKind, KeyName, KeyPrefix, KeyStore, SecretValue};

const SVC: &str = "svc";

fn key(name: &str) -> KeyName {
    KeyName::new(name).unwrap()
}

fn value(bytes: &[u8]) -> SecretValue {
    SecretValue::copy_from_slice(bytes)
}

/// A mock store, a `KeyringStore` over it, and the fixture that removes its lock file.
fn setup(tag: &str) -> (Arc<mock::Store>, KeyringStore, Cleanup) {
    let mock = mock::Store::new().unwrap();
    let store = over(mock.clone(), SVC, tag);
    (mock, store, Cleanup::new(SVC, lock_file(tag)))
}

mod conformance_over_mock {
    use super::*;
    kms_core::conformance_tests!(Cleaned::new(over(
        mock::Store::new().unwrap(),
        "conf",
        "conformance"
    )));
}

#[tokio::test]
async fn store_get_list_remove_round_trip() {
    let (_mock, store, _cleanup) = setup("round-trip");
    store.store(&key("a/one"), value(b"1")).await.unwrap();
    store.store(&key("b/two"), value(b"2")).await.unwrap();
    assert_eq!(
        store
            .get(&key("a/one"))
            .await
            .unwrap()
            .value
            .expose_secret(),
        b"1"
    );
    let mut all = store.list(&KeyPrefix::all()).await.unwrap();
    all.sort();
    assert_eq!(all, vec![key("a/one"), key("b/two")]);
    assert_eq!(
        store.list(&KeyPrefix::new("a/").unwrap()).await.unwrap(),
        vec![key("a/one")]
    );
    store.remove(&key("a/one")).await.unwrap();
    assert_eq!(
        store.list(&KeyPrefix::all()).await.unwrap(),
        vec![key("b/two")]
    );
    assert_eq!(
        store.get(&key("a/one")).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// (injected error, expected kind, a word the message must contain)
fn cases() -> Vec<(keyring_core::Error, ErrorKind, &'static str)> {
    use keyring_core::Error as K;
    vec![
        (K::NoEntry, ErrorKind::NotFound, "no such keyring entry"),
        (
            K::NoStorageAccess("collection is locked".into()),
            ErrorKind::Unavailable,
            "locked",
        ),
        (
            K::PlatformFailure("dbus went away".into()),
            ErrorKind::Unavailable,
            "dbus went away",
        ),
        (
            K::BadEncoding(b"SECRETBYTES".to_vec()),
            ErrorKind::InvalidData,
            "UTF-8",
        ),
        (
            K::BadDataFormat(b"SECRETBYTES".to_vec(), "bad header".into()),
            ErrorKind::InvalidData,
            "bad header",
        ),
        (
            K::BadStoreFormat("broken".into()),
            ErrorKind::InvalidData,
            "broken",
        ),
        (
            K::TooLong("user".into(), 255),
            ErrorKind::InvalidInput,
            "255",
        ),
        (
            K::Invalid("secret".into(), "cannot be empty".into()),
            ErrorKind::InvalidInput,
            "empty",
        ),
        (
            K::Ambiguous(Vec::new()),
            ErrorKind::Conflict,
            "0 keyring entries",
        ),
        (
            K::NoDefaultStore,
            ErrorKind::Configuration,
            "no keyring credential store",
        ),
        (
            K::NotSupportedByStore("nope".into()),
            ErrorKind::Unsupported,
            "nope",
        ),
    ]
}

#[tokio::test]
async fn every_error_on_get_is_mapped_without_bytes() {
    let (mock, store, _cleanup) = setup("errors-get");
    store.store(&key("k"), value(b"v")).await.unwrap();
    for (err, kind, word) in cases() {
        inject(&mock, SVC, "k", err);
        let e = store.get(&key("k")).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
        assert_eq!(e.backend(), Some("keyring"));
        assert!(e.message().contains(word), "{e}");
        assert!(e.message().contains("reading k"), "{e}");
        assert!(!e.to_string().contains("SECRETBYTES") && !format!("{e:?}").contains("SECRET"));
        // The error was consumed; the value is intact.
        assert_eq!(
            store.get(&key("k")).await.unwrap().value.expose_secret(),
            b"v"
        );
    }
}

#[tokio::test]
async fn a_failed_store_loses_nothing() {
    let (mock, store, _cleanup) = setup("errors-store");
    store.store(&key("k"), value(b"old")).await.unwrap();
    for (err, kind, _) in cases() {
        inject(&mock, SVC, "k", err);
        let e = store.store(&key("k"), value(b"new")).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
        assert_eq!(
            store.get(&key("k")).await.unwrap().value.expose_secret(),
            b"old"
        );
        assert_eq!(store.list(&KeyPrefix::all()).await.unwrap(), vec![key("k")]);
    }
    // A failed first store does not add the name to the index.
    inject(
        &mock,
        SVC,
        "fresh",
        keyring_core::Error::NoStorageAccess("locked".into()),
    );
    store.store(&key("fresh"), value(b"x")).await.unwrap_err();
    assert_eq!(store.list(&KeyPrefix::all()).await.unwrap(), vec![key("k")]);
}

#[tokio::test]
async fn a_failed_remove_keeps_the_entry_and_its_index_name() {
    let (mock, store, _cleanup) = setup("errors-remove");
    store.store(&key("k"), value(b"v")).await.unwrap();
    inject(
        &mock,
        SVC,
        "k",
        keyring_core::Error::PlatformFailure("boom".into()),
    );
    let e = store.remove(&key("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(store.list(&KeyPrefix::all()).await.unwrap(), vec![key("k")]);
    assert_eq!(
        store.get(&key("k")).await.unwrap().value.expose_secret(),
        b"v"
    );
    assert_eq!(
        store.remove(&key("missing")).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn index_errors_surface_on_list_and_health() {
    let (mock, store, _cleanup) = setup("errors-index");
    store.store(&key("k"), value(b"v")).await.unwrap();
    inject(
        &mock,
        SVC,
        INDEX_ACCOUNT,
        keyring_core::Error::NoStorageAccess("no session".into()),
    );
    let e = store.list(&KeyPrefix::all()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.message().contains("no session"), "{e}");
    inject(
        &mock,
        SVC,
        INDEX_ACCOUNT,
        keyring_core::Error::PlatformFailure("no bus".into()),
    );
    assert_eq!(
        store.health().await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    store.health().await.unwrap();
    // An index write failure fails the store (the caller retries), never silently.
    inject(
        &mock,
        SVC,
        INDEX_ACCOUNT,
        keyring_core::Error::NoStorageAccess("locked".into()),
    );
    assert_eq!(
        store
            .store(&key("k2"), value(b"v"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Unavailable
    );
}

/// Garbage in the index fails `list` and `health` with InvalidData; the
/// next store rebuilds it from every key the keyring holds for the service (here through the
/// mock's search), so keys written before the corruption are listed again.
#[tokio::test]
async fn missing_index_lists_nothing_and_corrupt_index_is_rebuilt_from_the_keyring() {
    let (mock, store, _cleanup) = setup("corrupt");
    assert!(store.list(&KeyPrefix::all()).await.unwrap().is_empty());
    store.health().await.unwrap();
    store.store(&key("a/1"), value(b"v1")).await.unwrap();
    store.store(&key("a/2"), value(b"v2")).await.unwrap();
    // Another service's key, and a prefix-sharing service, must not leak in.
    over(mock.clone(), "svc2", "corrupt-other")
        .store(&key("other"), value(b"x"))
        .await
        .unwrap();
    let _other_lock = Cleanup::new("svc2", lock_file("corrupt-other"));
    let index = mock.build(SVC, INDEX_ACCOUNT, None).unwrap();
    index.set_secret(b"{not json").unwrap();
    let e = store.list(&KeyPrefix::all()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidData);
    assert!(
        e.message().contains("corrupt") && e.message().contains("rebuilds"),
        "{e}"
    );
    let e = store.health().await.unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::InvalidData,
        "health reports the corrupt index: {e}"
    );
    store.store(&key("a/3"), value(b"v3")).await.unwrap();
    assert_eq!(
        store.list(&KeyPrefix::all()).await.unwrap(),
        vec![key("a/1"), key("a/2"), key("a/3")]
    );
    store.health().await.unwrap();
    // A key removed by hand before the rebuild is not resurrected.
    mock.build(SVC, "a/2", None)
        .unwrap()
        .delete_credential()
        .unwrap();
    index.set_secret(b"garbage").unwrap();
    store.remove(&key("a/1")).await.unwrap();
    assert_eq!(
        store.list(&KeyPrefix::all()).await.unwrap(),
        vec![key("a/3")]
    );
}

#[tokio::test]
async fn removing_an_entry_deleted_by_hand_cleans_the_index() {
    let (mock, store, _cleanup) = setup("by-hand");
    store.store(&key("k"), value(b"v")).await.unwrap();
    mock.build(SVC, "k", None)
        .unwrap()
        .delete_credential()
        .unwrap();
    // The NotFound says what the call did change: the stale name left the index.
    let e = store.remove(&key("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.message().contains("taken out of the index"), "{e}");
    assert!(store.list(&KeyPrefix::all()).await.unwrap().is_empty());
    // A key that is neither stored nor listed: a plain NotFound that changed nothing.
    let e = store.remove(&key("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(!e.message().contains("index"), "{e}");
}

#[tokio::test]
async fn oversized_values_are_rejected_before_any_keyring_call() {
    let (mock, store, _cleanup) = setup("oversized");
    // An injected error would fire on the first keyring call; it must still be pending after.
    inject(
        &mock,
        SVC,
        "big",
        keyring_core::Error::PlatformFailure("called".into()),
    );
    let e = store
        .store(&key("big"), value(&[7; 4097]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let pending = store.get(&key("big")).await.unwrap_err();
    assert!(pending.message().contains("called"), "{pending}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_store_instances_writing_concurrently_lose_no_index_update() {
    let mock = mock::Store::new().unwrap();
    let _cleanup = Cleanup::new(SVC, lock_file("two-writers"));
    let a = over(mock.clone(), SVC, "two-writers");
    let b = over(mock.clone(), SVC, "two-writers");
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            store
                .store(&key(&format!("k{i}")), value(b"v"))
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(a.list(&KeyPrefix::all()).await.unwrap().len(), 40);
    assert_eq!(b.list(&KeyPrefix::all()).await.unwrap().len(), 40);
}

/// A keyring that accepts writes and keeps nothing.
#[derive(Debug)]
struct Forgetful;

#[derive(Debug)]
struct ForgetfulCred(String, String);

impl CredentialApi for ForgetfulCred {
    fn set_secret(&self, _: &[u8]) -> keyring_core::Result<()> {
        Ok(())
    }
    fn get_secret(&self) -> keyring_core::Result<Vec<u8>> {
        Err(keyring_core::Error::NoEntry)
    }
    fn delete_credential(&self) -> keyring_core::Result<()> {
        Err(keyring_core::Error::NoEntry)
    }
    fn get_credential(&self) -> keyring_core::Result<Option<Arc<Credential>>> {
        Ok(None)
    }
    fn get_specifiers(&self) -> Option<(String, String)> {
        Some((self.0.clone(), self.1.clone()))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl CredentialStoreApi for Forgetful {
    fn vendor(&self) -> String {
        "forgetful".into()
    }
    fn id(&self) -> String {
        "forgetful".into()
    }
    fn build(
        &self,
        service: &str,
        user: &str,
        _: Option<&HashMap<&str, &str>>,
    ) -> keyring_core::Result<Entry> {
        Ok(Entry::new_with_credential(Arc::new(ForgetfulCred(
            service.into(),
            user.into(),
        ))))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[tokio::test]
async fn a_keyring_that_does_not_persist_fails_the_store_loudly() {
    let _cleanup = Cleanup::new(SVC, lock_file("forgetful"));
    let store = over(Arc::new(Forgetful), SVC, "forgetful");
    let e = store.store(&key("k"), value(b"v")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.message().contains("did not keep"), "{e}");
    assert!(store.list(&KeyPrefix::all()).await.unwrap().is_empty());
}

#[tokio::test]
async fn debug_and_display_show_no_secret() {
    let (_mock, store, _cleanup) = setup("debug");
    store
        .store(&key("k"), value(b"hunter2-topsecret"))
        .await
        .unwrap();
    let builder = KeyringStore::builder("svc").lock_file(common::lock_file("debug"));
    for text in [
        format!("{store:?}"),
        store.to_string(),
        format!("{builder:?}"),
        format!("{:?}", store.get(&key("k")).await.unwrap()),
    ] {
        assert!(!text.contains("hunter2"), "{text}");
    }
    assert_eq!(store.to_string(), "Keyring(custom:svc)");
    assert!(format!("{store:?}").contains("svc"));
}

#[tokio::test]
async fn bad_service_names_are_configuration_errors() {
    for service in ["", "a\nb"] {
        let e = KeyringStore::builder(service)
            .backend(KeyringBackend::Custom {
                store: mock::Store::new().unwrap(),
                max_value_len: 10,
            })
            .build()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Configuration);
    }
}

/// A `KeyringStore` over `store` with its own lock file (removed by the returned fixture).
fn custom(
    store: Arc<keyring_core::CredentialStore>,
    max_value_len: usize,
    tag: &str,
    configure: impl FnOnce(
        kms_backend_keyring::KeyringStoreBuilder,
    ) -> kms_backend_keyring::KeyringStoreBuilder,
) -> (KeyringStore, Cleanup) {
    let builder = KeyringStore::builder(SVC)
        .backend(KeyringBackend::Custom {
            store,
            max_value_len,
        })
        .lock_file(lock_file(tag));
    let store = configure(builder).build_blocking().unwrap();
    (store, Cleanup::new(SVC, lock_file(tag)))
}

/// The index is written before the value. When the index write fails (a
/// full quota) nothing is written; when the value write fails the index change is undone. A
/// second index item is a corrupt index, rebuilt by the next store.
#[tokio::test]
async fn a_store_that_fails_leaves_the_key_as_it_was() {
    let (mock, store, _cleanup) = setup("fails-unchanged");
    store.store(&key("a/1"), value(b"old")).await.unwrap();
    // (b) two index items: a corrupt index (not a Conflict for ever), rebuilt from the keyring
    // by the store, which then writes its value.
    inject(
        &mock,
        SVC,
        INDEX_ACCOUNT,
        keyring_core::Error::Ambiguous(Vec::new()),
    );
    let e = store.list(&KeyPrefix::all()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
    inject(
        &mock,
        SVC,
        INDEX_ACCOUNT,
        keyring_core::Error::Ambiguous(Vec::new()),
    );
    store.store(&key("a/1"), value(b"uno")).await.unwrap();
    assert_eq!(
        store.get(&key("a/1")).await.unwrap().value.expose_secret(),
        b"uno"
    );
    assert_eq!(
        store.list(&KeyPrefix::all()).await.unwrap(),
        vec![key("a/1")]
    );
    // (a) the index write of a new key fails: the value is not written either.
    let flaky = Arc::new(FailingWrites {
        inner: mock.clone(),
        account: INDEX_ACCOUNT,
    });
    let (failing, _cleanup2) = custom(flaky, 4096, "fails-unchanged-2", |b| b);
    let e = failing
        .store(&key("t/k"), value(b"value"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.message().contains("nothing was written"), "{e}");
    assert_eq!(
        store.get(&key("t/k")).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store.list(&KeyPrefix::all()).await.unwrap(),
        vec![key("a/1")]
    );
    // The value write of a new key fails: its name is taken out of the index again.
    inject(
        &mock,
        SVC,
        "t/k",
        keyring_core::Error::PlatformFailure("boom".into()),
    );
    store.store(&key("t/k"), value(b"value")).await.unwrap_err();
    assert_eq!(
        store.get(&key("t/k")).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store.list(&KeyPrefix::all()).await.unwrap(),
        vec![key("a/1")]
    );
    // A failed remove keeps the value and its name.
    inject(
        &mock,
        SVC,
        "a/1",
        keyring_core::Error::PlatformFailure("boom".into()),
    );
    store.remove(&key("a/1")).await.unwrap_err();
    assert_eq!(
        store.list(&KeyPrefix::all()).await.unwrap(),
        vec![key("a/1")]
    );
    assert_eq!(
        store.get(&key("a/1")).await.unwrap().value.expose_secret(),
        b"uno"
    );
}

/// Mocked (the kernel only returns EDQUOT to non-root users, and the tests
/// run as root): a full kernel key quota is PermissionDenied, not retryable, naming the quota,
/// and the failed store leaves nothing behind.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_full_kernel_quota_is_a_permanent_error_naming_the_quota() {
    let (mock, store, _cleanup) = setup("quota");
    store.store(&key("small"), value(b"v")).await.unwrap();
    inject(
        &mock,
        SVC,
        "big",
        keyring_core::Error::PlatformFailure(Box::new(linux_keyutils::KeyError::QuotaExceeded)),
    );
    let e = store
        .store(&key("big"), value(&[1; 4000]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(!e.is_retryable());
    assert!(
        e.message().contains("quota") && e.message().contains("maxbytes"),
        "{e}"
    );
    assert!(!e.message().contains("D-Bus"), "{e}");
    assert_eq!(
        store.get(&key("big")).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store.list(&KeyPrefix::all()).await.unwrap(),
        vec![key("small")]
    );
}

/// The index is chained over several entries, each within the backend's
/// value limit, so a service is not capped at ~126 keys of 256-byte names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_shards_instead_of_capping_the_service() {
    let mock = mock::Store::new().unwrap();
    let (store, _cleanup) = custom(mock.clone(), 4096, "shards", |b| b);
    let names: Vec<KeyName> = (0..300)
        .map(|i| key(&format!("{i:03}{}", "n".repeat(253))))
        .collect();
    for name in &names {
        store.store(name, value(b"v")).await.unwrap();
    }
    assert_eq!(store.list(&KeyPrefix::all()).await.unwrap(), names);
    // Every index entry stays within the value limit.
    let mut shards = 0;
    for i in 0.. {
        let account = if i == 0 {
            INDEX_ACCOUNT.to_owned()
        } else {
            format!("{INDEX_ACCOUNT}.{i}")
        };
        match mock.build(SVC, &account, None).unwrap().get_secret() {
            Ok(bytes) => assert!(bytes.len() <= 4096),
            Err(_) => break,
        }
        shards += 1;
    }
    assert!(shards > 1, "{shards}");
    for name in &names {
        store.remove(name).await.unwrap();
    }
    assert!(store.list(&KeyPrefix::all()).await.unwrap().is_empty());
    assert!(
        mock.build(SVC, INDEX_ACCOUNT, None)
            .unwrap()
            .get_secret()
            .is_err()
    );
}

/// A full index is a clear error naming the limit, not an InvalidInput blaming the name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_index_is_an_error_naming_the_limit() {
    // Values of at most 100 bytes: a 256-byte name fits in no index entry.
    let (store, _cleanup) = custom(mock::Store::new().unwrap(), 100, "full-name", |b| b);
    let e = store
        .store(&key(&"n".repeat(256)), value(b"v"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(
        e.message().contains("index") && e.message().contains("100 bytes"),
        "{e}"
    );
    // One name per entry (40 bytes; the first also holds `"shards":<n>,`, 14 more): the
    // entry after MAX_INDEX_SHARDS fails naming that limit.
    let (store, _cleanup2) = custom(mock::Store::new().unwrap(), 54, "full-shards", |b| b);
    for i in 0..MAX_INDEX_SHARDS {
        store
            .store(&key(&format!("k{i:019}")), value(b"v"))
            .await
            .unwrap();
    }
    let e = store
        .store(&key("k-one-too-many-xxxx"), value(b"v"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(
        e.message().contains("MAX_INDEX_SHARDS") && e.message().contains("1024"),
        "{e}"
    );
    assert_eq!(
        store
            .get(&key("k-one-too-many-xxxx"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
}

/// A held lock file makes `store` wait at most the lock timeout, with a typed
/// error; a caller that gives up leaves nothing to land later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_waits_are_bounded_and_an_abandoned_store_never_lands() {
    let mock = mock::Store::new().unwrap();
    let (store, _cleanup) = custom(mock.clone(), 4096, "held-lock", |b| {
        b.lock_timeout(Duration::from_millis(200))
    });
    // Another process holds the lock: `flock(1)` (util-linux) sleeping with it (`--no-fork`:
    // the process that holds the lock is the one killed below).
    let path = lock_file("held-lock");
    let mut holder = std::process::Command::new("flock")
        .args(["--exclusive", "--no-fork"])
        .arg(&path)
        .args(["sleep", "60"])
        .spawn()
        .expect("flock runs");
    // Wait until it holds the lock.
    let probe = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap();
    for _ in 0..500 {
        match probe.try_lock() {
            Ok(()) => {
                probe.unlock().unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => break,
        }
    }
    assert!(probe.try_lock().is_err(), "flock never took the lock");
    let started = Instant::now();
    let e = store.store(&key("k"), value(b"v")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.message().contains("lock"), "{e}");
    assert!(e.proves_not_applied(), "the lock was never taken: {e}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // A caller that gives up while the lock is held (lock timeout far away).
    let (patient, _cleanup2) = custom(mock.clone(), 4096, "held-lock", |b| {
        b.lock_timeout(Duration::from_secs(30))
    });
    let gave_up = tokio::time::timeout(
        Duration::from_millis(100),
        patient.store(&key("k"), value(b"ghost")),
    )
    .await;
    assert!(gave_up.is_err());
    holder.kill().unwrap();
    holder.wait().unwrap();
    // Give an abandoned write every chance to land; it must not.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store.get(&key("k")).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(store.list(&KeyPrefix::all()).await.unwrap().is_empty());
    store.store(&key("k"), value(b"v")).await.unwrap();
}

/// A keyring whose every call blocks until released (a stopped daemon, from the store's side).
#[derive(Debug)]
struct Hanging {
    release: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

#[derive(Debug)]
struct HangingCred(Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl HangingCred {
    fn wait(&self) {
        let (lock, cv) = &*self.0;
        let mut released = lock.lock().unwrap();
        while !*released {
            released = cv.wait(released).unwrap();
        }
    }
}

impl CredentialApi for HangingCred {
    fn set_secret(&self, _: &[u8]) -> keyring_core::Result<()> {
        self.wait();
        Ok(())
    }
    fn get_secret(&self) -> keyring_core::Result<Vec<u8>> {
        self.wait();
        Err(keyring_core::Error::NoEntry)
    }
    fn delete_credential(&self) -> keyring_core::Result<()> {
        self.wait();
        Err(keyring_core::Error::NoEntry)
    }
    fn get_credential(&self) -> keyring_core::Result<Option<Arc<Credential>>> {
        Ok(None)
    }
    fn get_specifiers(&self) -> Option<(String, String)> {
        None
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl CredentialStoreApi for Hanging {
    fn vendor(&self) -> String {
        "hanging".into()
    }
    fn id(&self) -> String {
        "hanging".into()
    }
    fn build(
        &self,
        _: &str,
        _: &str,
        _: Option<&HashMap<&str, &str>>,
    ) -> keyring_core::Result<Entry> {
        Ok(Entry::new_with_credential(Arc::new(HangingCred(
            self.release.clone(),
        ))))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Over a keyring that never answers, every call fails with Timeout after
/// the configured timeout, concurrent calls time out together (none queues behind another),
/// the abandoned threads are bounded, and the store works again once the keyring answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyring_that_never_answers_times_out_without_queueing() {
    let release = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let (store, _cleanup) = custom(
        Arc::new(Hanging {
            release: release.clone(),
        }),
        4096,
        "hanging",
        |b| {
            b.timeout(Duration::from_millis(200))
                .lock_timeout(Duration::from_millis(200))
                .max_abandoned_calls(4)
        },
    );
    let started = Instant::now();
    let results = futures_lite::future::zip(
        futures_lite::future::zip(store.get(&key("a")), store.health()),
        store.list(&KeyPrefix::all()),
    )
    .await;
    let elapsed = started.elapsed();
    let ((a, h), l) = results;
    for e in [a.unwrap_err(), h.unwrap_err(), l.unwrap_err()] {
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    }
    // Three calls of 200 ms each, concurrently: well under their sum plus slack for a busy box.
    assert!(elapsed < Duration::from_millis(2000), "{elapsed:?}");
    let e = store.store(&key("b"), value(b"v")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    // Four calls are stuck: the next fails at once instead of starting a fifth thread.
    let started = Instant::now();
    let e = store.get(&key("c")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.message().contains("still running"), "{e}");
    assert!(started.elapsed() < Duration::from_millis(100));
    // The keyring answers again: the stuck calls return and new calls work.
    {
        let (lock, cv) = &*release;
        *lock.lock().unwrap() = true;
        cv.notify_all();
    }
    let mut last = None;
    for _ in 0..100 {
        match store.get(&key("a")).await {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                last = None;
                break;
            }
            other => last = Some(other),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(last.is_none(), "{last:?}");
}

/// Outside any Tokio runtime, building and every call work (on a plain
/// executor), no panic.
#[test]
fn the_store_works_outside_a_tokio_runtime() {
    assert!(tokio::runtime::Handle::try_current().is_err());
    let mock = mock::Store::new().unwrap();
    let store = over(mock.clone(), SVC, "no-runtime");
    let _cleanup = Cleanup::new(SVC, lock_file("no-runtime"));
    futures_lite::future::block_on(async {
        store.store(&key("k"), value(b"v")).await.unwrap();
        assert_eq!(
            store.get(&key("k")).await.unwrap().value.expose_secret(),
            b"v"
        );
        assert_eq!(store.list(&KeyPrefix::all()).await.unwrap(), vec![key("k")]);
        store.health().await.unwrap();
        store.remove(&key("k")).await.unwrap();
        // `build` (not only `build_blocking`) works on a plain executor too.
        KeyringStore::builder(SVC)
            .backend(KeyringBackend::Custom {
                store: mock.clone(),
                max_value_len: 10,
            })
            .lock_file(lock_file("no-runtime"))
            .build()
            .await
            .unwrap();
    });
}

#[tokio::test]
async fn bad_timeouts_are_configuration_errors() {
    for builder in [
        KeyringStore::builder(SVC).timeout(Duration::ZERO),
        KeyringStore::builder(SVC).max_abandoned_calls(0),
    ] {
        let e = builder
            .backend(KeyringBackend::Custom {
                store: mock::Store::new().unwrap(),
                max_value_len: 10,
            })
            .build()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Configuration, "{e}");
    }
}

/// The longest timeouts (`Duration::MAX`, "wait as long as it takes") are accepted and every
/// call works: the write deadline (lock wait plus keyring work) used to overflow and panic.
#[tokio::test]
async fn the_longest_timeouts_do_not_panic() {
    let (store, _cleanup) = custom(mock::Store::new().unwrap(), 4096, "longest", |b| {
        b.timeout(Duration::MAX).lock_timeout(Duration::MAX)
    });
    store.store(&key("a"), value(b"v")).await.unwrap();
    assert_eq!(
        store.get(&key("a")).await.unwrap().value.expose_secret(),
        b"v"
    );
    assert_eq!(store.list(&KeyPrefix::all()).await.unwrap(), vec![key("a")]);
    store.health().await.unwrap();
    store.remove(&key("a")).await.unwrap();
}

/// The mock store, except that every write of `account` fails (a full quota, from the store's
/// side; the mock's own injection fires on the next call of any kind, which is the read).
#[derive(Debug)]
struct FailingWrites {
    inner: Arc<mock::Store>,
    account: &'static str,
}

#[derive(Debug)]
struct FailingCred {
    inner: Entry,
    fail: bool,
}

impl CredentialApi for FailingCred {
    fn set_secret(&self, secret: &[u8]) -> keyring_core::Result<()> {
        if self.fail {
            return Err(keyring_core::Error::PlatformFailure("write refused".into()));
        }
        self.inner.set_secret(secret)
    }
    fn get_secret(&self) -> keyring_core::Result<Vec<u8>> {
        self.inner.get_secret()
    }
    fn delete_credential(&self) -> keyring_core::Result<()> {
        self.inner.delete_credential()
    }
    fn get_credential(&self) -> keyring_core::Result<Option<Arc<Credential>>> {
        Ok(None)
    }
    fn get_specifiers(&self) -> Option<(String, String)> {
        self.inner.get_specifiers()
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl CredentialStoreApi for FailingWrites {
    fn vendor(&self) -> String {
        "failing-writes".into()
    }
    fn id(&self) -> String {
        "failing-writes".into()
    }
    fn build(
        &self,
        service: &str,
        user: &str,
        modifiers: Option<&HashMap<&str, &str>>,
    ) -> keyring_core::Result<Entry> {
        Ok(Entry::new_with_credential(Arc::new(FailingCred {
            inner: self.inner.build(service, user, modifiers)?,
            fail: user == self.account,
        })))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The names of `count` keys that fill several small index entries.
fn many(count: usize) -> Vec<KeyName> {
    (0..count).map(|i| key(&format!("k/{i:03}"))).collect()
}

/// An index entry missing from the middle of the chain (deleted by hand or by another
/// program), or a missing first entry while later ones exist, does not silently drop the names
/// it held from `list`: `list` and `health` fail with InvalidData naming the entry, and the
/// next write rebuilds the index from the keys the keyring holds.
#[tokio::test]
async fn a_missing_index_entry_is_corrupt_not_silently_fewer_names() {
    let mock = mock::Store::new().unwrap();
    let (store, _cleanup) = custom(mock.clone(), 128, "gap", |b| b);
    let names = many(40);
    for name in &names {
        store.store(name, value(b"v")).await.unwrap();
    }
    assert_eq!(store.list(&KeyPrefix::all()).await.unwrap(), names);
    let shard = |i: usize| {
        mock.build(SVC, &format!("{INDEX_ACCOUNT}.{i}"), None)
            .unwrap()
    };
    assert!(shard(3).get_secret().is_ok(), "at least four index entries");
    for (lost, named) in [
        (shard(1), format!("{INDEX_ACCOUNT}.1")),
        (
            mock.build(SVC, INDEX_ACCOUNT, None).unwrap(),
            INDEX_ACCOUNT.to_owned(),
        ),
    ] {
        lost.delete_credential().unwrap();
        let e = store.list(&KeyPrefix::all()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
        assert!(
            e.message().contains(&format!("{named} is corrupt")) && e.message().contains("missing"),
            "{e}"
        );
        let e = store.health().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
        // The next write rebuilds every name from the keyring.
        store.store(&key("k/new"), value(b"v")).await.unwrap();
        let mut expected = names.clone();
        expected.push(key("k/new"));
        assert_eq!(store.list(&KeyPrefix::all()).await.unwrap(), expected);
        store.health().await.unwrap();
        store.remove(&key("k/new")).await.unwrap();
    }
}

/// Emptying index entries in the middle and at the end of the chain (removing every key they
/// listed) keeps every other name listed, and new names fill the emptied entries again.
#[tokio::test]
async fn emptied_index_entries_keep_the_rest_listed() {
    let mock = mock::Store::new().unwrap();
    let (store, _cleanup) = custom(mock.clone(), 128, "emptied", |b| b);
    let names = many(40);
    for name in &names {
        store.store(name, value(b"v")).await.unwrap();
    }
    // 128-byte entries: the first holds k/000..k/011, the next ones 13 names each, the last
    // k/038 and k/039. Empty the second entry entirely, and the last one.
    let shard = |i: usize| {
        mock.build(SVC, &format!("{INDEX_ACCOUNT}.{i}"), None)
            .unwrap()
            .get_secret()
    };
    assert!(shard(3).is_ok() && shard(4).is_err());
    let gone: Vec<KeyName> = names[12..25].iter().chain(&names[38..]).cloned().collect();
    for name in &gone {
        store.remove(name).await.unwrap();
    }
    assert_eq!(shard(1).unwrap(), br#"{"names":[],"v":1}"#);
    assert!(shard(3).is_err(), "the emptied last entry is dropped");
    let kept: Vec<KeyName> = names
        .iter()
        .filter(|n| !gone.contains(n))
        .cloned()
        .collect();
    assert_eq!(store.list(&KeyPrefix::all()).await.unwrap(), kept);
    store.health().await.unwrap();
    for name in &gone {
        store.store(name, value(b"v")).await.unwrap();
    }
    assert_eq!(store.list(&KeyPrefix::all()).await.unwrap(), names);
    for name in &names {
        store.remove(name).await.unwrap();
    }
    assert!(store.list(&KeyPrefix::all()).await.unwrap().is_empty());
    assert!(
        mock.build(SVC, INDEX_ACCOUNT, None)
            .unwrap()
            .get_secret()
            .is_err()
    );
    assert!(
        mock.build(SVC, &format!("{INDEX_ACCOUNT}.1"), None)
            .unwrap()
            .get_secret()
            .is_err()
    );
}

/// The whole index deleted by hand (every entry gone, so nothing looks corrupt): `list` shows
/// nothing until the next write, which rebuilds the index from the keys the keyring holds
/// instead of starting a new one that leaves the old keys unlisted for good.
#[tokio::test]
async fn a_deleted_index_comes_back_with_the_next_write() {
    let mock = mock::Store::new().unwrap();
    let (store, _cleanup) = custom(mock.clone(), 128, "deleted-index", |b| b);
    let names = many(20);
    for name in &names {
        store.store(name, value(b"v")).await.unwrap();
    }
    for i in (0..3).rev() {
        let account = if i == 0 {
            INDEX_ACCOUNT.to_owned()
        } else {
            format!("{INDEX_ACCOUNT}.{i}")
        };
        let _ = mock.build(SVC, &account, None).unwrap().delete_credential();
    }
    assert!(store.list(&KeyPrefix::all()).await.unwrap().is_empty());
    store.store(&key("k/new"), value(b"v")).await.unwrap();
    let mut expected = names.clone();
    expected.push(key("k/new"));
    assert_eq!(store.list(&KeyPrefix::all()).await.unwrap(), expected);
    // Removing instead of storing rebuilds it too.
    mock.build(SVC, INDEX_ACCOUNT, None)
        .unwrap()
        .delete_credential()
        .unwrap();
    let _ = mock
        .build(SVC, &format!("{INDEX_ACCOUNT}.1"), None)
        .unwrap()
        .delete_credential();
    store.remove(&key("k/new")).await.unwrap();
    assert_eq!(store.list(&KeyPrefix::all()).await.unwrap(), names);
}
