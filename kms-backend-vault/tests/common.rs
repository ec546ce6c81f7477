//! Shared helpers for the tests against a real OpenBao dev server.
#![allow(dead_code)]

use kms_backend_vault::{VaultAuth, VaultClient};
use serde_json::Value;

/// The server address; fails loudly when the peer is not running.
pub fn addr() -> String {
    std::env::var("KMS_TEST_VAULT_ADDR").expect(
        "KMS_TEST_VAULT_ADDR is not set: start the OpenBao dev server with scripts/test \
         (scripts/peers/openbao.sh) or export KMS_TEST_VAULT_ADDR/KMS_TEST_VAULT_TOKEN",
    )
}

/// The root token of the dev server.
pub fn root_token() -> String {
    std::env::var("KMS_TEST_VAULT_TOKEN")
        .expect("KMS_TEST_VAULT_TOKEN is not set: see scripts/peers/openbao.sh")
}

/// A client with the root token.
pub async fn root_client() -> VaultClient {
    VaultClient::builder(addr())
        .auth(VaultAuth::token(root_token()))
        .build()
        .await
        .expect("root client")
}

/// A name unique to this process and call (not every test binary uses it).
#[allow(unused_imports)]
pub use kms_core::conformance::unique_name as unique;

/// A raw API call with the root token (test setup only); panics on a non-2xx answer.
pub async fn admin(method: &str, path: &str, body: Option<Value>) -> Value {
    let url = format!("{}/v1/{path}", addr());
    let mut req = reqwest::Client::new()
        .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
        .header("X-Vault-Token", root_token());
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("admin request");
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "{method} {path}: {status} {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    }
}

/// Creates an AppRole role with `policies` and token TTLs; returns (role_id, secret_id).
pub async fn approle(policies: &[&str], ttl: &str, max_ttl: &str) -> (String, String) {
    let role = unique("role");
    admin(
        "POST",
        &format!("auth/approle/role/{role}"),
        Some(serde_json::json!({
            "token_policies": policies,
            "token_ttl": ttl,
            "token_max_ttl": max_ttl,
        })),
    )
    .await;
    let role_id =
        admin("GET", &format!("auth/approle/role/{role}/role-id"), None).await["data"]["role_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let secret_id = admin(
        "POST",
        &format!("auth/approle/role/{role}/secret-id"),
        Some(serde_json::json!({})),
    )
    .await["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (role_id, secret_id)
}

/// A policy allowing everything under `secret/` (data and metadata) except `secret/*/forbidden/*`.
pub async fn kv_policy() -> String {
    let name = unique("kv");
    let policy = r#"
path "secret/data/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "secret/metadata/*" { capabilities = ["read", "delete", "list"] }
path "secret/data/forbidden/*" { capabilities = ["deny"] }
"#;
    admin(
        "PUT",
        &format!("sys/policies/acl/{name}"),
        Some(serde_json::json!({ "policy": policy })),
    )
    .await;
    name
}
