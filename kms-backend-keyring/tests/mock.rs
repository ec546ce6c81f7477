//! Every error path and the index logic, over `keyring_core::mock` with its error injection.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::{inject, over};
use keyring_core::api::{CredentialApi, CredentialStoreApi};
use keyring_core::{Credential, Entry, mock};
use kms_backend_keyring::{INDEX_ACCOUNT, KeyringBackend, KeyringStore};
use kms_core::{ErrorKind, KeyName, KeyPrefix, KeyStore, SecretValue};

const SVC: &str = "svc";

fn key(name: &str) -> KeyName {
    KeyName::new(name).unwrap()
}

fn value(bytes: &[u8]) -> SecretValue {
    SecretValue::copy_from_slice(bytes)
}

fn setup(tag: &str) -> (Arc<mock::Store>, KeyringStore) {
    let mock = mock::Store::new().unwrap();
    let store = over(mock.clone(), SVC, tag);
    (mock, store)
}

mod conformance_over_mock {
    use super::*;
    kms_core::conformance_tests!(over(mock::Store::new().unwrap(), "conf", "conformance"));
}

#[tokio::test]
async fn store_get_list_remove_round_trip() {
    let (_mock, store) = setup("round-trip");
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
    let (mock, store) = setup("errors-get");
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
    let (mock, store) = setup("errors-store");
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
    let (mock, store) = setup("errors-remove");
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
    let (mock, store) = setup("errors-index");
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

#[tokio::test]
async fn missing_index_lists_nothing_and_corrupt_index_is_rebuilt() {
    let (mock, store) = setup("corrupt");
    assert!(store.list(&KeyPrefix::all()).await.unwrap().is_empty());
    store.health().await.unwrap();
    store.store(&key("before"), value(b"v")).await.unwrap();
    let index = mock.build(SVC, INDEX_ACCOUNT, None).unwrap();
    index.set_secret(b"{not json").unwrap();
    let e = store.list(&KeyPrefix::all()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidData);
    assert!(
        e.message().contains("corrupt") && e.message().contains("rebuilds"),
        "{e}"
    );
    store.store(&key("after"), value(b"v")).await.unwrap();
    assert_eq!(
        store.list(&KeyPrefix::all()).await.unwrap(),
        vec![key("after")]
    );
    // Removing a key the index forgot still works.
    store.remove(&key("before")).await.unwrap();
}

#[tokio::test]
async fn removing_an_entry_deleted_by_hand_cleans_the_index() {
    let (mock, store) = setup("by-hand");
    store.store(&key("k"), value(b"v")).await.unwrap();
    mock.build(SVC, "k", None)
        .unwrap()
        .delete_credential()
        .unwrap();
    assert_eq!(
        store.remove(&key("k")).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(store.list(&KeyPrefix::all()).await.unwrap().is_empty());
}

#[tokio::test]
async fn oversized_values_are_rejected_before_any_keyring_call() {
    let (mock, store) = setup("oversized");
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
    let store = over(Arc::new(Forgetful), SVC, "forgetful");
    let e = store.store(&key("k"), value(b"v")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.message().contains("did not keep"), "{e}");
    assert!(store.list(&KeyPrefix::all()).await.unwrap().is_empty());
}

#[tokio::test]
async fn debug_and_display_show_no_secret() {
    let (_mock, store) = setup("debug");
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
