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

    // A real token whose policy (`default`) cannot touch secret/.
    let token = limited_token();
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
    assert!(!out.both().contains(&token));
    expect(
        kms_on(&vault_uri(&prefix), &["rm", "--yes", "app/x"]),
        b"",
        0,
    );
}

/// A token with only the `default` policy, made with the OpenBao HTTP API.
fn limited_token() -> String {
    let addr = std::env::var("KMS_TEST_VAULT_ADDR").unwrap();
    let root = std::env::var("KMS_TEST_VAULT_TOKEN").unwrap();
    let out = std::process::Command::new("curl")
        .args([
            "-fsS",
            "-X",
            "POST",
            "-H",
            &format!("X-Vault-Token: {root}"),
        ])
        .args([
            "-d",
            r#"{"policies":["default"],"ttl":"5m","no_default_policy":false}"#,
        ])
        .arg(format!("{addr}/v1/auth/token/create"))
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["auth"]["client_token"].as_str().unwrap().to_owned()
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
