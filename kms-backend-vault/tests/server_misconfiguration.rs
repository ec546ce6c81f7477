//! Misconfiguration, against a real OpenBao dev server: a wrong mount, engine or KV version is a
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

/// A mount removed after the store checked it (its check is cached) is still `Configuration`
/// naming the mount, never `NotFound` or an empty list: Vault's 404 "no handler for route"
/// means nothing is mounted there, not that the key is missing.
#[tokio::test]
async fn a_mount_removed_after_the_first_check_is_configuration() {
    let mount = common::unique("gone-mount");
    common::admin(
        "POST",
        &format!("sys/mounts/{mount}"),
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    )
    .await;
    let client = common::root_client().await;
    let store = VaultStore::builder(client).mount(&mount).build().unwrap();
    let k = key("before");
    store.store(&k, "v".into()).await.unwrap();
    common::admin("DELETE", &format!("sys/mounts/{mount}"), None).await;
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
        let err = result.expect_err(op);
        assert_eq!(err.kind(), ErrorKind::Configuration, "{op}: {err}");
        assert!(err.to_string().contains("mount"), "{op}: {err}");
    }
}

/// A prefix and names with AWS's extra characters (`+ = @`) map to exactly that path: they
/// round-trip, list under the prefix, and are where `bao kv get` finds them.
#[tokio::test]
async fn prefixes_and_names_with_plus_equals_at_map_to_their_path() {
    let client = common::root_client().await;
    let prefix = format!("kms-tests/{}/team+a=b@c", common::unique("pfx"));
    let store = VaultStore::builder(client).prefix(&prefix).build().unwrap();
    let k = KeyName::new("db@prod/api+key=1").unwrap();
    store.store(&k, "v".into()).await.unwrap();
    assert_eq!(
        store.get(&k).await.unwrap().value.expose_str().unwrap(),
        "v"
    );
    assert_eq!(
        store.list(&KeyPrefix::new("").unwrap()).await.unwrap(),
        vec![k.clone()]
    );
    let out = std::process::Command::new("bao")
        .args([
            "kv",
            "get",
            "-field=value",
            &format!("secret/{prefix}/db@prod/api+key=1"),
        ])
        .env("BAO_ADDR", common::addr())
        .env("BAO_TOKEN", common::root_token())
        .output()
        .expect("bao on PATH");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "v");
    store.remove(&k).await.unwrap();
}

/// A Transit key name that does not exist (a typo, or a key deleted since) is
/// `Configuration` naming the key on decrypt, not `InvalidData` ("does not decrypt"), which
/// would make a misconfiguration look like corrupt data.
#[tokio::test]
async fn a_missing_transit_key_on_decrypt_is_configuration() {
    let client = common::root_client().await;
    let real = VaultTransitProvider::new(client.clone(), common::unique("transit-real")).unwrap();
    real.ensure_key().await.unwrap();
    let context = EncryptionContext::new();
    let ciphertext = real.encrypt(&"x".into(), &context).await.unwrap();
    let missing_name = common::unique("transit-typo");
    let missing = VaultTransitProvider::new(client, &missing_name).unwrap();
    let err = missing.decrypt(&ciphertext, &context).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    assert!(err.to_string().contains(&missing_name), "{err}");
    assert!(err.to_string().contains("key"), "{err}");
}

/// A Transit key that is not derived ignores the context (OpenBao encrypts and decrypts
/// under any context), so the encryption context would bind nothing: every operation of a
/// provider over such a key is `Configuration` naming the key, before any data is sent.
#[tokio::test]
async fn a_transit_key_that_is_not_derived_is_configuration_on_every_operation() {
    let name = common::unique("transit-plain");
    common::admin("POST", &format!("transit/keys/{name}"), Some(json!({}))).await;
    let provider = VaultTransitProvider::new(common::root_client().await, &name).unwrap();
    let mut context = EncryptionContext::new();
    context.insert("tenant", "a");
    let results = [
        provider.encrypt(&"x".into(), &context).await.map(drop),
        provider.decrypt(b"vault:v1:AAAA", &context).await.map(drop),
        provider.generate_data_key(&context).await.map(drop),
    ];
    for result in results {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
        assert!(
            err.to_string().contains(&name) && err.to_string().contains("derived"),
            "{err}"
        );
    }
}
