//! The `kms` command against OpenBao (the shared dev server at `KMS_TEST_VAULT_ADDR`, token
//! `KMS_TEST_VAULT_TOKEN`), every key under a prefix of its own.

mod common;

use common::*;

#[test]
fn every_command_against_openbao() {
    every_command(&|p| vault_uri(p), 512 * 1024, Versions::Counter);
}

#[test]
fn a_bad_token_is_denied_and_a_limited_one_is_refused() {
    let prefix = unique("denied");
    let out = expect(
        kms_on(
            &vault_uri_with_token_var(&prefix, "KMS_CLI_BAD_TOKEN"),
            &["get", "app/x"],
        )
        .env("KMS_CLI_BAD_TOKEN", "not-a-real-token"),
        b"",
        4,
    );
    assert!(!out.stderr.contains("not-a-real-token"), "{}", out.stderr);
    let out = expect(
        kms_on(
            &vault_uri_with_token_var(&prefix, "KMS_CLI_BAD_TOKEN"),
            &["health", "--json"],
        )
        .env("KMS_CLI_BAD_TOKEN", "not-a-real-token"),
        b"",
        4,
    );
    assert_eq!(json(&out)["healthy"], false);

    // A real token whose policy grants reads under another prefix of secret/ only: the mount
    // is visible to it, the key is not.
    let policy = unique("policy");
    vault_api(
        "PUT",
        &format!("sys/policies/acl/{policy}"),
        &serde_json::json!({
            "policy": format!("path \"secret/data/{prefix}-other/*\" {{ capabilities = [\"read\"] }}"),
        }),
    );
    let token = token_with_policy(&policy);
    expect(kms_on(&vault_uri(&prefix), &["put", "app/x"]), b"v", 0);
    let out = expect(
        kms_on(
            &vault_uri_with_token_var(&prefix, "KMS_CLI_LIMITED_TOKEN"),
            &["get", "app/x"],
        )
        .env("KMS_CLI_LIMITED_TOKEN", &token),
        b"",
        4,
    );
    assert!(out.stderr.contains("permission denied"), "{}", out.stderr);
    assert!(!out.both().contains(&token));
    expect(
        kms_on(
            &vault_uri_with_token_var(&prefix, "KMS_CLI_LIMITED_TOKEN"),
            &["put", "app/x"],
        )
        .env("KMS_CLI_LIMITED_TOKEN", &token),
        b"never written",
        4,
    );

    // A token with only the `default` policy sees no grant under secret/ at all; OpenBao then
    // hides the mount, which the backend reports as a configuration error naming both causes.
    let token = token_with_policy("default");
    let out = expect(
        kms_on(
            &vault_uri_with_token_var(&prefix, "KMS_CLI_LIMITED_TOKEN"),
            &["get", "app/x"],
        )
        .env("KMS_CLI_LIMITED_TOKEN", &token),
        b"",
        2,
    );
    assert!(
        out.stderr.contains("policies grant nothing"),
        "{}",
        out.stderr
    );

    let out = expect(
        kms_on(&vault_uri(&prefix), &["get", "app/x", "--reveal"]),
        b"",
        0,
    );
    // Nothing the refused tokens sent was written: still version 1, value "v".
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("value ") && l.ends_with(" v")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("version ") && l.ends_with(" 1")),
        "{}",
        out.stdout
    );
    expect(
        kms_on(&vault_uri(&prefix), &["rm", "--yes", "app/x"]),
        b"",
        0,
    );
    vault_api(
        "DELETE",
        &format!("sys/policies/acl/{policy}"),
        &serde_json::json!({}),
    );
}

/// Calls the OpenBao HTTP API with the root token (curl); returns the JSON answer, if any.
fn vault_api(method: &str, path: &str, body: &serde_json::Value) -> serde_json::Value {
    let addr = std::env::var("KMS_TEST_VAULT_ADDR").unwrap();
    let root = std::env::var("KMS_TEST_VAULT_TOKEN").unwrap();
    let out = std::process::Command::new("curl")
        .args([
            "-fsS",
            "-X",
            method,
            "-H",
            &format!("X-Vault-Token: {root}"),
        ])
        .args(["-d", &body.to_string()])
        .arg(format!("{addr}/v1/{path}"))
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{method} {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// A token with only `policy` (and not the default policy), valid 5 minutes.
fn token_with_policy(policy: &str) -> String {
    let v = vault_api(
        "POST",
        "auth/token/create",
        &serde_json::json!({
            "policies": [policy], "ttl": "5m", "no_default_policy": policy != "default",
        }),
    );
    v["auth"]["client_token"].as_str().unwrap().to_owned()
}

#[test]
fn put_cas_is_check_and_set_on_kv_v2() {
    let prefix = unique("cas");
    let uri = vault_uri(&prefix);
    let out = expect(kms_on(&uri, &["put", "k", "--cas", "0"]), b"one", 0);
    assert!(out.stdout.contains("version 1"), "{}", out.stdout);
    // The key exists now: "only if absent" is a conflict, and nothing is written.
    expect(kms_on(&uri, &["put", "k", "--cas", "0"]), b"lost", 6);
    let out = expect(kms_on(&uri, &["put", "k", "--cas", "1"]), b"two", 0);
    assert!(out.stdout.contains("version 2"), "{}", out.stdout);
    let out = expect(kms_on(&uri, &["put", "k", "--cas", "1"]), b"stale", 6);
    assert!(!out.both().contains("stale"), "{}", out.both());
    let out = expect(kms_on(&uri, &["get", "k", "--reveal"]), b"", 0);
    assert!(out.stdout.contains("two"), "{}", out.stdout);
    expect(kms_on(&uri, &["put", "k", "--cas", "x"]), b"v", 7);
}

#[test]
fn an_unreachable_server_is_unavailable() {
    let out = expect(
        kms_on(
            "vault+http://127.0.0.1:9/secret?auth.token=x&timeout.all=2s",
            &["health"],
        ),
        b"",
        5,
    );
    assert!(
        out.stderr.contains("unavailable") || out.stderr.contains("timeout"),
        "{}",
        out.stderr
    );
}
