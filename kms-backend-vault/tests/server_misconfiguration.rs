//! Issue 14 against a real OpenBao dev server: a wrong mount, engine or KV version is a
//! `Configuration` error naming the setting on every operation (health too), before anything
//! is written; configuration strings are checked like key names; the namespace has one
//! canonical form; KV v1 removes secrets written by other tools.

mod common;

use kms_backend_vault::{KvVersion, VaultAuth, VaultClient, VaultStore, VaultTransitProvider};
use kms_core::{CryptoProvider, EncryptionContext, ErrorKind, KeyName, KeyPrefix, KeyStore};
use serde_json::json;

fn key(tag: &str) -> KeyName {
    KeyName::new(format!("kms-tests/{}", common::unique(tag))).unwrap()
}

/// Every operation of `store` fails with `Configuration` naming `setting`.
async fn every_operation_is_configuration(store: &VaultStore, setting: &str) {
    let k = key("misconfigured");
    let results = [
        ("get", store.get(&k).await.map(drop)),
        ("get_version", store.get_version(&k, "1").await.map(drop)),
        ("store", store.store(&k, "v".into()).await.map(drop)),
        ("remove", store.remove(&k).await),
        (
            "list",
            store.list(&KeyPrefix::new("").unwrap()).await.map(drop),
        ),
        ("health", store.health().await),
    ];
    for (op, result) in results {
        // KV v1 has no versions: that is its own (typed) answer, before any I/O.
        if op == "get_version" && matches!(&result, Err(e) if e.kind() == ErrorKind::Unsupported) {
            continue;
        }
        let err = result.expect_err(op);
        assert_eq!(err.kind(), ErrorKind::Configuration, "{store} {op}: {err}");
        assert!(err.to_string().contains(setting), "{store} {op}: {err}");
    }
}

#[tokio::test]
async fn a_missing_mount_is_configuration_for_every_operation() {
    let client = common::root_client().await;
    let missing = common::unique("nosuchmount");
    let store = VaultStore::builder(client.clone())
        .mount(&missing)
        .build()
        .unwrap();
    every_operation_is_configuration(&store, "mount").await;
    // A path inside a mount is not the mount.
    let inside = VaultStore::builder(client.clone())
        .mount("secret/data")
        .build()
        .unwrap();
    every_operation_is_configuration(&inside, "mount").await;
    // Another engine.
    let transit = VaultStore::builder(client.clone())
        .mount("transit")
        .build()
        .unwrap();
    every_operation_is_configuration(&transit, "mount").await;
    let wrong = VaultTransitProvider::new(client, "k")
        .unwrap()
        .with_mount("secret")
        .unwrap();
    let err = wrong
        .encrypt(&"x".into(), &EncryptionContext::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    assert!(err.to_string().contains("Transit"), "{err}");
}

#[tokio::test]
async fn the_wrong_kv_version_is_configuration_and_writes_nothing() {
    let client = common::root_client().await;
    let v1_on_v2 = VaultStore::builder(client.clone())
        .kv_version(KvVersion::V1)
        .build()
        .unwrap();
    every_operation_is_configuration(&v1_on_v2, "KV v2").await;

    let v2_on_v1 = VaultStore::builder(client.clone())
        .mount("kv1")
        .kv_version(KvVersion::V2)
        .build()
        .unwrap();
    let k = key("stray");
    let err = v2_on_v1.store(&k, "v".into()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    assert!(err.to_string().contains("kv_version"), "{err}");
    // Nothing written at kv1/data/<k> (the stray path a KV v2 write would take).
    let v1 = VaultStore::builder(client)
        .mount("kv1")
        .kv_version(KvVersion::V1)
        .build()
        .unwrap();
    let stray = KeyName::new(format!("data/{k}")).unwrap();
    assert_eq!(
        v1.get(&stray).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    every_operation_is_configuration(&v2_on_v1, "KV v1").await;
}

#[tokio::test]
async fn configuration_strings_are_checked_like_key_names() {
    let client = common::root_client().await;
    for (mount, prefix) in [
        ("../sys", None),
        ("", None),
        ("secret", Some("../x")),
        ("secret", Some("a//b")),
    ] {
        let mut b = VaultStore::builder(client.clone()).mount(mount);
        if let Some(p) = prefix {
            b = b.prefix(p);
        }
        let err = b.build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{mount:?} {prefix:?}");
        let setting = if prefix.is_some() { "prefix" } else { "mount" };
        assert!(err.to_string().contains(setting), "{err}");
    }
    for key in ["../keys/x", "", "a/../../sys"] {
        let err = VaultTransitProvider::new(client.clone(), key).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{key:?}");
    }
    let err = VaultTransitProvider::new(client, "k")
        .unwrap()
        .with_mount("../sys")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    let err = VaultClient::builder(common::addr())
        .auth(VaultAuth::app_role("r", "s").with_mount("../../sys/raw"))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    assert!(err.to_string().contains("auth mount"), "{err}");
}

#[tokio::test]
async fn a_missing_auth_mount_is_configuration_naming_it() {
    let mount = common::unique("no-approle");
    let err = VaultClient::builder(common::addr())
        .auth(VaultAuth::app_role("role", "secret-id-xyz").with_mount(&mount))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    assert!(err.to_string().contains(&mount), "{err}");
    assert!(!err.to_string().contains("secret-id-xyz"), "{err}");
}

#[tokio::test]
async fn the_root_namespace_sends_no_header() {
    // OpenBao reads a header "root" as a child namespace called root (404 on everything);
    // "", "/" and "root" all mean the root namespace and work.
    let k = key("ns");
    common::admin(
        "POST",
        &format!("secret/data/{k}"),
        Some(json!({"data": {"value": "in root"}})),
    )
    .await;
    for ns in ["", "/", "root", "root/"] {
        let client = VaultClient::builder(common::addr())
            .auth(VaultAuth::token(common::root_token()))
            .namespace(ns)
            .build()
            .await
            .unwrap();
        assert_eq!(client.namespace(), None, "{ns:?}");
        let store = VaultStore::builder(client).build().unwrap();
        assert_eq!(
            store.get(&k).await.unwrap().value.expose_secret(),
            b"in root",
            "{ns:?}"
        );
    }
    common::admin("DELETE", &format!("secret/metadata/{k}"), None).await;
}

#[tokio::test]
async fn kv1_removes_a_secret_written_by_another_tool() {
    let store = VaultStore::builder(common::root_client().await)
        .mount("kv1")
        .kv_version(KvVersion::V1)
        .build()
        .unwrap();
    let k = key("foreign-v1");
    common::admin(
        "POST",
        &format!("kv1/{k}"),
        Some(json!({"host": "db.internal", "port": 5432})),
    )
    .await;
    let got = store.get(&k).await.unwrap();
    let object: serde_json::Value = serde_json::from_slice(got.value.expose_secret()).unwrap();
    assert_eq!(object, json!({"host": "db.internal", "port": 5432}));
    store.remove(&k).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        store.remove(&k).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn a_missing_namespace_is_configuration_naming_it() {
    let ns = common::unique("no-such-ns");
    let err = VaultClient::builder(common::addr())
        .auth(VaultAuth::token(common::root_token()))
        .namespace(&ns)
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    assert!(err.to_string().contains(&ns), "{err}");
    // Lazily: every store operation says so too, never NotFound or an empty list.
    let client = VaultClient::builder(common::addr())
        .auth(VaultAuth::token(common::root_token()))
        .namespace(&ns)
        .build_lazy()
        .unwrap();
    let store = VaultStore::builder(client).build().unwrap();
    every_operation_is_configuration(&store, "namespace").await;
}
