//! Vault-specific behaviour against a real OpenBao dev server: versions, check-and-set,
//! soft delete, foreign shapes, AppRole login, renewal and re-login after revocation.

mod common;

use std::time::Duration;

use kms_backend_vault::{RemoveMode, VaultAuth, VaultClient, VaultStore};
use kms_core::{ErrorKind, KeyName, KeyPrefix, KeyStore, SecretValue};
use serde_json::json;

fn key(tag: &str) -> KeyName {
    KeyName::new(format!("kms-tests/{}", common::unique(tag))).unwrap()
}

#[tokio::test]
async fn versions_carry_number_and_created_time() {
    let store = VaultStore::builder(common::root_client().await)
        .build()
        .unwrap();
    let k = key("versions");
    let before = std::time::SystemTime::now() - Duration::from_secs(60);
    let m1 = store.store(&k, "one".into()).await.unwrap();
    let m2 = store.store(&k, "two".into()).await.unwrap();
    assert_eq!(m1.version.as_deref(), Some("1"));
    assert_eq!(m2.version.as_deref(), Some("2"));
    let created = m1.created_at.expect("created time");
    assert!(created > before && created < before + Duration::from_secs(120));
    let current = store.get(&k).await.unwrap();
    assert_eq!(current.meta.version.as_deref(), Some("2"));
    assert_eq!(current.meta.created_at, m2.created_at);
    assert_eq!(
        store
            .get_version(&k, "1")
            .await
            .unwrap()
            .value
            .expose_secret(),
        b"one"
    );
    let err = store.get_version(&k, "7").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    for bad in ["0", "-1", "latest", ""] {
        let err = store.get_version(&k, bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
    }
    store.remove(&k).await.unwrap();
}

#[tokio::test]
async fn check_and_set_conflicts_lose_nothing() {
    let store = VaultStore::builder(common::root_client().await)
        .build()
        .unwrap();
    let k = key("cas");
    store.store_cas(&k, "first".into(), 0).await.unwrap();
    let err = store.store_cas(&k, "again".into(), 0).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let err = store.store_cas(&k, "stale".into(), 5).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(store.get(&k).await.unwrap().value.expose_secret(), b"first");
    let m = store.store_cas(&k, "second".into(), 1).await.unwrap();
    assert_eq!(m.version.as_deref(), Some("2"));
    assert_eq!(
        store.get(&k).await.unwrap().value.expose_secret(),
        b"second"
    );
    store.remove(&k).await.unwrap();

    let kv1 = VaultStore::builder(common::root_client().await)
        .mount("kv1")
        .kv_version(kms_backend_vault::KvVersion::V1)
        .build()
        .unwrap();
    let err = kv1.store_cas(&k, "x".into(), 0).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(!kv1.capabilities().versions);
    assert_eq!(
        kv1.get_version(&k, "1").await.unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

#[tokio::test]
async fn soft_delete_hides_latest_keeps_old_versions() {
    let store = VaultStore::builder(common::root_client().await)
        .remove_mode(RemoveMode::SoftDelete)
        .build()
        .unwrap();
    let k = key("soft");
    store.store(&k, "one".into()).await.unwrap();
    store.store(&k, "two".into()).await.unwrap();
    store.remove(&k).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        store.remove(&k).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store
            .get_version(&k, "1")
            .await
            .unwrap()
            .value
            .expose_secret(),
        b"one"
    );
    // Documented: the metadata remains, so the key is still listed.
    let listed = store
        .list(&KeyPrefix::new(k.as_str()).unwrap())
        .await
        .unwrap();
    assert_eq!(listed, vec![k.clone()]);
    // Writing again makes it live.
    store.store(&k, "three".into()).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap().value.expose_secret(), b"three");
    let destroy = VaultStore::builder(store.client().clone()).build().unwrap();
    destroy.remove(&k).await.unwrap();
    assert_eq!(
        store.get_version(&k, "1").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn binary_is_base64_text_is_plain_and_foreign_shapes_read_as_json() {
    let store = VaultStore::builder(common::root_client().await)
        .build()
        .unwrap();
    let bin = key("binary");
    let bytes: Vec<u8> = (0..=255).collect();
    store
        .store(&bin, SecretValue::new(bytes.clone()))
        .await
        .unwrap();
    let raw = common::admin("GET", &format!("secret/data/{bin}"), None).await;
    assert_eq!(raw["data"]["data"]["encoding"], "base64");
    assert_eq!(
        store.get(&bin).await.unwrap().value.expose_secret(),
        &bytes[..]
    );

    let text = key("text");
    store.store(&text, "plain words".into()).await.unwrap();
    let raw = common::admin("GET", &format!("secret/data/{text}"), None).await;
    assert_eq!(raw["data"]["data"], json!({"value": "plain words"}));

    let foreign = key("foreign");
    common::admin(
        "POST",
        &format!("secret/data/{foreign}"),
        Some(json!({"data": {"username": "admin", "password": "hunter2"}})),
    )
    .await;
    // Another tool's shape reads as the whole data object, as JSON.
    let got = store.get(&foreign).await.unwrap();
    let object: serde_json::Value = serde_json::from_slice(got.value.expose_secret()).unwrap();
    assert_eq!(object, json!({"username": "admin", "password": "hunter2"}));
    assert_eq!(got.meta.version.as_deref(), Some("1"));
    for k in [&bin, &text, &foreign] {
        store.remove(k).await.unwrap();
    }
}

#[tokio::test]
async fn approle_login_and_policy_denial_without_relogin() {
    let policy = common::kv_policy().await;
    let (role_id, secret_id) = common::approle(&[&policy], "5m", "10m").await;
    let client = VaultClient::builder(common::addr())
        .auth(VaultAuth::app_role(role_id, secret_id.clone()))
        .build()
        .await
        .unwrap();
    assert_eq!(client.logins(), 1);
    assert!(client.token_accessor().is_some());
    assert!(!format!("{client:?}").contains(&secret_id));
    let store = VaultStore::builder(client.clone()).build().unwrap();
    let k = key("approle");
    store.store(&k, "v".into()).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap().value.expose_secret(), b"v");

    let forbidden = KeyName::new(format!("forbidden/{}", common::unique("x"))).unwrap();
    let err = store.get(&forbidden).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert_eq!(
        client.logins(),
        1,
        "a policy denial with a valid token does not log in again"
    );
    store.remove(&k).await.unwrap();

    let err = VaultClient::builder(common::addr())
        .auth(VaultAuth::app_role("no-such-role", "no-such-secret"))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert!(!err.to_string().contains("no-such-secret"));
}

#[tokio::test]
async fn revoked_token_triggers_one_shared_relogin() {
    let policy = common::kv_policy().await;
    let (role_id, secret_id) = common::approle(&[&policy], "5m", "10m").await;
    let client = VaultClient::builder(common::addr())
        .auth(VaultAuth::app_role(role_id, secret_id))
        .build()
        .await
        .unwrap();
    let store = VaultStore::builder(client.clone()).build().unwrap();
    let k = key("revoke");
    store.store(&k, "v".into()).await.unwrap();
    let accessor = client.token_accessor().unwrap();
    common::admin(
        "POST",
        "auth/token/revoke-accessor",
        Some(json!({ "accessor": accessor })),
    )
    .await;
    let reads: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let k = k.clone();
            tokio::spawn(async move { store.get(&k).await })
        })
        .collect();
    for r in reads {
        assert_eq!(r.await.unwrap().unwrap().value.expose_secret(), b"v");
    }
    assert_eq!(client.logins(), 2, "eight callers shared one re-login");
    assert_ne!(client.token_accessor().unwrap(), accessor);
    store.remove(&k).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_tokens_are_renewed_in_the_background() {
    let policy = common::kv_policy().await;
    // AppRole token: 2 s TTL, renewed at a quarter of it (1.5 s of slack for a loaded CI machine).
    let (role_id, secret_id) = common::approle(&[&policy], "2s", "5m").await;
    let client = VaultClient::builder(common::addr())
        .auth(VaultAuth::app_role(role_id, secret_id))
        .renew_fraction(0.25)
        .build()
        .await
        .unwrap();
    let accessor = client.token_accessor().unwrap();

    // A fixed child token with a 2 s TTL: renewed too (it cannot be re-obtained).
    let child = common::admin(
        "POST",
        "auth/token/create",
        Some(json!({ "policies": [policy], "ttl": "2s", "renewable": true })),
    )
    .await["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let fixed = VaultClient::builder(common::addr())
        .auth(VaultAuth::token(child))
        .renew_fraction(0.25)
        .build()
        .await
        .unwrap();

    // Real time: the server's TTLs are real. Well past both 2 s TTLs.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    for c in [&client, &fixed] {
        let store = VaultStore::builder(c.clone()).build().unwrap();
        let k = key("renewed");
        store.store(&k, "v".into()).await.unwrap();
        store.remove(&k).await.unwrap();
    }
    assert_eq!(client.logins(), 1, "renewed, not re-logged in");
    assert_eq!(client.token_accessor().unwrap(), accessor);
    // The lookup itself proves the token is alive (`admin` asserts a 2xx; an expired token's
    // accessor is a 400). Its TTL is whole seconds and can read 0 just before a renewal, so it
    // is not what is asserted.
    let looked_up = common::admin(
        "POST",
        "auth/token/lookup-accessor",
        Some(json!({ "accessor": accessor })),
    )
    .await;
    assert_eq!(
        looked_up["data"]["accessor"].as_str(),
        Some(accessor.as_str()),
        "token still alive"
    );
}

#[tokio::test]
async fn health_and_display() {
    let store = VaultStore::builder(common::root_client().await)
        .mount("kv1")
        .kv_version(kms_backend_vault::KvVersion::V1)
        .prefix("app")
        .build()
        .unwrap();
    store.health().await.unwrap();
    assert_eq!(store.to_string(), "Vault(kv1:kv1/app)");
    assert_eq!(store.backend(), "vault");
    assert!(
        VaultStore::builder(store.client().clone())
            .prefix("../x")
            .build()
            .is_err()
    );
}

#[tokio::test]
async fn tls_with_a_custom_ca() {
    let addr = std::env::var("KMS_TEST_VAULT_TLS_ADDR")
        .expect("KMS_TEST_VAULT_TLS_ADDR is not set: see scripts/peers/openbao.sh");
    let ca = std::fs::read(
        std::env::var("KMS_TEST_VAULT_CA_CERT")
            .expect("KMS_TEST_VAULT_CA_CERT is not set: see scripts/peers/openbao.sh"),
    )
    .unwrap();
    let err = VaultClient::builder(&addr)
        .auth(VaultAuth::token(common::root_token()))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "untrusted CA: {err}");

    let client = VaultClient::builder(&addr)
        .auth(VaultAuth::token(common::root_token()))
        .ca_cert_pem(ca)
        .build()
        .await
        .unwrap();
    let store = VaultStore::builder(client).build().unwrap();
    store.health().await.unwrap();
    let k = key("tls");
    store.store(&k, "over tls".into()).await.unwrap();
    assert_eq!(
        store.get(&k).await.unwrap().value.expose_secret(),
        b"over tls"
    );
    store.remove(&k).await.unwrap();
}

#[tokio::test]
async fn a_rejected_token_fails_at_build() {
    let err = VaultClient::builder(common::addr())
        .auth(VaultAuth::token("not-a-real-token"))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert!(!err.to_string().contains("not-a-real-token"), "{err}");
}
