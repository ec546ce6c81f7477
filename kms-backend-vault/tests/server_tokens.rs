//! Tokens, against a real OpenBao dev server: token state is classified by what Vault says.
//! An expired or revoked fixed token is `Unauthenticated` on every operation; a policy denial
//! is `PermissionDenied` and never costs a login, even for a token that cannot look itself
//! up; a rejected AppRole token costs exactly one login.

mod common;

use std::time::Duration;

use kms_backend_vault::{VaultAuth, VaultClient, VaultStore};
use kms_core::{ErrorKind, KeyName, KeyPrefix, KeyStore};
use serde_json::json;

fn key(tag: &str) -> KeyName {
    KeyName::new(format!("kms-tests/{}", common::unique(tag))).unwrap()
}

/// A child token of the root token with `policies`, `ttl` and no renewal.
async fn child_token(policies: &[&str], ttl: &str) -> (String, String) {
    let auth = common::admin(
        "POST",
        "auth/token/create",
        Some(json!({ "policies": policies, "ttl": ttl, "renewable": false })),
    )
    .await["auth"]
        .clone();
    (
        auth["client_token"].as_str().unwrap().to_owned(),
        auth["accessor"].as_str().unwrap().to_owned(),
    )
}

async fn every_operation_is_unauthenticated(store: &VaultStore) {
    let k = key("after");
    let results = [
        ("get", store.get(&k).await.map(drop)),
        ("get_version", store.get_version(&k, "1").await.map(drop)),
        ("store", store.store(&k, "v".into()).await.map(drop)),
        ("remove", store.remove(&k).await),
        (
            "list",
            store
                .list(&KeyPrefix::new("kms-tests/").unwrap())
                .await
                .map(drop),
        ),
        ("health", store.health().await),
    ];
    for (op, result) in results {
        let err = result.expect_err(op);
        assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{op}: {err}");
    }
}

#[tokio::test]
async fn an_expired_fixed_token_is_unauthenticated_for_every_operation() {
    let policy = common::kv_policy().await;
    let (token, _) = child_token(&[&policy], "2s").await;
    let client = VaultClient::builder(common::addr())
        .auth(VaultAuth::token(token.clone()))
        .build()
        .await
        .unwrap();
    let store = VaultStore::builder(client).build().unwrap();
    let k = key("before");
    store.store(&k, "v".into()).await.unwrap();
    store.remove(&k).await.unwrap();
    // Real time: the server's TTL is real.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    every_operation_is_unauthenticated(&store).await;
    // The same token at build: Unauthenticated too.
    let err = VaultClient::builder(common::addr())
        .auth(VaultAuth::token(token))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
}

#[tokio::test]
async fn a_revoked_fixed_token_is_unauthenticated_and_a_denial_is_permission_denied() {
    let policy = common::kv_policy().await;
    let (token, accessor) = child_token(&[&policy], "5m").await;
    let client = VaultClient::builder(common::addr())
        .auth(VaultAuth::token(token))
        .build()
        .await
        .unwrap();
    let store = VaultStore::builder(client).build().unwrap();
    let forbidden = KeyName::new(format!("forbidden/{}", common::unique("x"))).unwrap();
    let err = store.get(&forbidden).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    common::admin(
        "POST",
        "auth/token/revoke-accessor",
        Some(json!({ "accessor": accessor })),
    )
    .await;
    every_operation_is_unauthenticated(&store).await;
}

/// An AppRole whose tokens have no default policy (they cannot call `lookup-self`) and whose
/// secret id has 3 uses: ten denials cost no login, so the secret id still works after them.
#[tokio::test]
async fn policy_denials_never_cost_a_login() {
    let policy = common::kv_policy().await;
    let role = common::unique("nodefault");
    common::admin(
        "POST",
        &format!("auth/approle/role/{role}"),
        Some(json!({
            "token_policies": [policy],
            "token_no_default_policy": true,
            "secret_id_num_uses": 3,
            "token_ttl": "5m",
        })),
    )
    .await;
    let role_id = common::admin("GET", &format!("auth/approle/role/{role}/role-id"), None).await
        ["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret_id = common::admin(
        "POST",
        &format!("auth/approle/role/{role}/secret-id"),
        Some(json!({})),
    )
    .await["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = VaultClient::builder(common::addr())
        .auth(VaultAuth::app_role(role_id, secret_id))
        .build()
        .await
        .unwrap();
    assert_eq!(client.logins(), 1);
    let store = VaultStore::builder(client.clone()).build().unwrap();
    let forbidden = KeyName::new(format!("forbidden/{}", common::unique("x"))).unwrap();
    for _ in 0..10 {
        let err = store.get(&forbidden).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    }
    assert_eq!(client.logins(), 1, "no login for a policy denial");
    // A revoked token still costs exactly one login (the secret id has uses left).
    let accessor = client.token_accessor().unwrap();
    common::admin(
        "POST",
        "auth/token/revoke-accessor",
        Some(json!({ "accessor": accessor })),
    )
    .await;
    let k = key("after-revoke");
    store.store(&k, "v".into()).await.unwrap();
    assert_eq!(client.logins(), 2);
    store.remove(&k).await.unwrap();
    assert_eq!(client.logins(), 2);
}

/// The policy the README gives, for a unique prefix, on a token without the default policy:
/// every operation works (and nothing outside the prefix does).
#[tokio::test]
async fn the_readme_policy_is_enough() {
    let prefix = common::unique("readme-policy");
    let policy = format!(
        r#"
path "secret/data/{prefix}/*"     {{ capabilities = ["create", "read", "update"] }}
path "secret/data/{prefix}/*"     {{ capabilities = ["delete"] }}
path "secret/metadata/{prefix}/*" {{ capabilities = ["read", "list", "delete"] }}
"#
    );
    let name = common::unique("readme");
    common::admin(
        "PUT",
        &format!("sys/policies/acl/{name}"),
        Some(json!({ "policy": policy })),
    )
    .await;
    let token = common::admin(
        "POST",
        "auth/token/create",
        Some(json!({ "policies": [name], "no_default_policy": true, "ttl": "5m" })),
    )
    .await["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = VaultClient::builder(common::addr())
        .auth(VaultAuth::token(token))
        .build()
        .await
        .unwrap();
    let store = VaultStore::builder(client.clone())
        .prefix(&prefix)
        .build()
        .unwrap();
    store.health().await.unwrap();
    let k = KeyName::new("db/password").unwrap();
    store.store(&k, "one".into()).await.unwrap();
    store.store(&k, "two".into()).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap().value.expose_secret(), b"two");
    assert_eq!(
        store
            .get_version(&k, "1")
            .await
            .unwrap()
            .value
            .expose_secret(),
        b"one"
    );
    assert_eq!(
        store.list(&KeyPrefix::new("").unwrap()).await.unwrap(),
        vec![k.clone()]
    );
    let soft = VaultStore::builder(client.clone())
        .prefix(&prefix)
        .remove_mode(kms_backend_vault::RemoveMode::SoftDelete)
        .build()
        .unwrap();
    soft.remove(&k).await.unwrap();
    store.remove(&k).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap_err().kind(), ErrorKind::NotFound);
    let outside = VaultStore::builder(client).build().unwrap();
    let err = outside.get(&key("outside")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
}

/// A revoked AppRole token met by many concurrent callers costs one login, shared by all of
/// them, and every call succeeds on the new token; a second revocation soon after is
/// Unauthenticated without a login (rate limit), and a later one logs in again.
#[tokio::test]
async fn concurrent_callers_on_a_revoked_token_share_one_login() {
    let policy = common::kv_policy().await;
    let (role_id, secret_id) = common::approle(&[&policy], "5m", "5m").await;
    let client = VaultClient::builder(common::addr())
        .auth(VaultAuth::app_role(role_id, secret_id))
        .min_relogin_interval(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    let store = VaultStore::builder(client.clone()).build().unwrap();
    let k = key("concurrent-revoke");
    store.store(&k, "v".into()).await.unwrap();
    let revoke = |accessor: String| async move {
        common::admin(
            "POST",
            "auth/token/revoke-accessor",
            Some(json!({ "accessor": accessor })),
        )
        .await;
    };
    revoke(client.token_accessor().unwrap()).await;
    let gets = futures::future::join_all((0..10).map(|_| store.get(&k))).await;
    for got in gets {
        assert_eq!(got.unwrap().value.expose_str().unwrap(), "v");
    }
    assert_eq!(client.logins(), 2, "one shared re-login");
    // Revoked again right away: inside min_relogin_interval, no login.
    revoke(client.token_accessor().unwrap()).await;
    let err = store.get(&k).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert_eq!(client.logins(), 2);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        store.get(&k).await.unwrap().value.expose_str().unwrap(),
        "v"
    );
    assert_eq!(client.logins(), 3);
    store.remove(&k).await.unwrap();
}
