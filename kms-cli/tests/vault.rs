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
    // A version that is not a number is a usage error that does not repeat what was typed.
    let out = expect(kms_on(&uri, &["put", "k", "--cas", "hunter2"]), b"v", 2);
    assert_hidden(&out, "hunter2");
    let out = expect(kms_on(&uri, &["get", "k", "--version", "hunter2"]), b"", 2);
    assert_hidden(&out, "hunter2");
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

/// The data object of a KV v2 secret, read with the root token.
fn vault_data(path: &str) -> serde_json::Value {
    vault_api(
        "GET",
        &format!("secret/data/{path}"),
        &serde_json::json!({}),
    )["data"]["data"]
        .clone()
}

#[test]
fn field_keeps_a_secret_in_vaults_own_shape() {
    let tag = unique("field");
    let uri = vault_uri(&tag);
    // Written as `bao kv put secret/<tag>/db username=app password=… port=5432` writes it.
    vault_api(
        "POST",
        &format!("secret/data/{tag}/db"),
        &serde_json::json!({"data": {"username": "app", "password": "old-pw", "port": 5432}}),
    );
    // The `bao kv get -field=password` habit.
    let out = expect(
        kms_on(&uri, &["get", "db", "--field", "password", "--reveal"]),
        b"",
        0,
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("value") && l.ends_with(" old-pw")),
        "{}",
        out.stdout
    );
    let out = expect(
        kms_on(
            &uri,
            &["get", "db", "--field", "port", "--json", "--reveal"],
        ),
        b"",
        0,
    );
    assert_eq!(json(&out)["value"], "5432");
    let out = expect(kms_on(&uri, &["get", "db", "--field", "nope"]), b"", 1);
    assert_hidden(&out, "old-pw");

    // put --field sets that field in Vault's map and keeps the others: bao still reads it.
    let out = expect(
        kms_on(&uri, &["put", "db", "--field", "password"]),
        b"new-pw",
        0,
    );
    assert!(out.stdout.contains("(version 2)"), "{}", out.stdout);
    assert_eq!(
        vault_data(&format!("{tag}/db")),
        serde_json::json!({"username": "app", "password": "new-pw", "port": 5432})
    );
    // With --cas: check-and-set against the version.
    expect(
        kms_on(&uri, &["put", "db", "--field", "password", "--cas", "1"]),
        b"stale",
        6,
    );
    expect(
        kms_on(&uri, &["put", "db", "--field", "password", "--cas", "2"]),
        b"newer-pw",
        0,
    );
    let out = expect(
        kms_on(
            &uri,
            &[
                "get",
                "db",
                "--field",
                "password",
                "--version",
                "2",
                "--json",
                "--reveal",
            ],
        ),
        b"",
        0,
    );
    assert_eq!(json(&out)["value"], "new-pw");

    // rotate --field: fresh base64url text in that field only.
    let out = expect(
        kms_on(&uri, &["rotate", "db", "--field", "password", "--json"]),
        b"",
        0,
    );
    let r = json(&out);
    assert_eq!(r["old_version"], "3");
    assert_eq!(r["new_version"], "4");
    let data = vault_data(&format!("{tag}/db"));
    let pw = data["password"].as_str().unwrap();
    assert_eq!(pw.len(), 43, "{data}");
    assert!(
        pw.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{data}"
    );
    assert_eq!(data["username"], "app");
    assert_eq!(data["port"], 5432);
    assert_ne!(
        expect(kms_on(&uri, &["rotate", "db", "--field", "nope"]), b"", 1).code,
        0
    );
    assert_eq!(vault_data(&format!("{tag}/db")), data);

    // A URI that already selects this field works; one that selects another is refused.
    expect(
        kms_on(
            &format!("{uri}&field=password"),
            &["get", "db", "--field", "password"],
        ),
        b"",
        0,
    );
    let out = expect(
        kms_on(
            &format!("{uri}&field=username"),
            &["get", "db", "--field", "password"],
        ),
        b"",
        2,
    );
    assert!(out.stderr.contains("another field"), "{}", out.stderr);
    // A store of a configuration file, by name.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kms.toml");
    write_file(&config, format!("[stores.v]\nuri = \"{uri}\"\n").as_bytes());
    let out = expect(
        kms().args([
            "--config",
            config.to_str().unwrap(),
            "--name",
            "v",
            "get",
            "db",
            "--field",
            "username",
            "--json",
            "--reveal",
        ]),
        b"",
        0,
    );
    assert_eq!(json(&out)["value"], "app");
    expect(kms_on(&uri, &["rm", "--yes", "db"]), b"", 0);
}

#[test]
fn a_soft_deleted_key_is_held_by_neither_diff_nor_migrate_nor_export() {
    let tag = unique("soft");
    let a = vault_uri(&format!("{tag}-a"));
    let b = vault_uri(&format!("{tag}-b"));
    expect(kms_on(&a, &["put", "app/live"]), b"1", 0);
    expect(kms_on(&a, &["put", "app/gone"]), b"2", 0);
    // Soft-delete the latest version, as `bao kv delete` does: the metadata stays.
    vault_api(
        "DELETE",
        &format!("secret/data/{tag}-a/app/gone"),
        &serde_json::json!({}),
    );
    let out = expect(kms_on(&a, &["ls"]), b"", 0);
    assert!(out.stdout.contains("app/gone"), "{}", out.stdout);
    let out = expect(kms_on(&a, &["ls", "--long"]), b"", 0);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("app/gone") && l.contains("deleted")),
        "{}",
        out.stdout
    );
    expect(kms_on(&a, &["get", "app/gone"]), b"", 3);

    // The reported input: diff no longer calls it "only in A" ...
    let out = expect(kms().args(["diff", &a, &b, "--json"]), b"", 0);
    let d = json(&out);
    assert_eq!(d["only_in_a"], serde_json::json!(["app/live"]), "{d}");
    assert_eq!(d["not_held"], serde_json::json!(["app/gone"]), "{d}");
    // ... migrate does not copy it ...
    let out = expect(migrate(&a, &b, &[]), b"", 0);
    assert!(
        out.stdout.starts_with(
            "migrate: copied 1, skipped 0, failed 0 (1 listed but deleted in the source)"
        ),
        "{}",
        out.stdout
    );
    // ... and after a complete migrate the stores compare equal.
    let out = expect(kms().args(["diff", &a, &b, "--exit-code"]), b"", 0);
    assert!(
        out.stdout
            .contains("0 only in A, 0 only in B, 0 different, 1 equal"),
        "{}",
        out.stdout
    );

    // The same rule on the destination side: a soft-deleted destination key is absent.
    vault_api(
        "DELETE",
        &format!("secret/data/{tag}-b/app/live"),
        &serde_json::json!({}),
    );
    let out = expect(kms().args(["diff", &a, &b, "--json"]), b"", 0);
    assert_eq!(json(&out)["only_in_a"], serde_json::json!(["app/live"]));
    let out = expect(migrate(&a, &b, &[]), b"", 0);
    assert!(
        out.stdout.starts_with("migrate: copied 1,"),
        "{}",
        out.stdout
    );
    expect(kms().args(["diff", &a, &b, "--exit-code"]), b"", 0);

    // export leaves it out, and says so.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.json");
    let out = expect(
        kms_on(
            &a,
            &["export", file.to_str().unwrap(), "--plaintext-i-understand"],
        ),
        b"",
        0,
    );
    assert!(out.stdout.contains("exported 1 key(s)"), "{}", out.stdout);
    assert!(
        out.stdout.contains("1 listed key(s) are deleted"),
        "{}",
        out.stdout
    );

    for path in [
        format!("{tag}-a/app/live"),
        format!("{tag}-a/app/gone"),
        format!("{tag}-b/app/live"),
    ] {
        vault_api(
            "DELETE",
            &format!("secret/metadata/{path}"),
            &serde_json::json!({}),
        );
    }
}

#[test]
fn a_rerun_of_migrate_prints_what_changed_or_failed_and_ls_survives_a_closed_pipe() {
    const N: usize = 200;
    let tag = unique("rerun");
    let a = vault_uri(&format!("{tag}-a"));
    let b = vault_uri(&format!("{tag}-b"));
    let c = vault_uri(&format!("{tag}-c"));
    let keys: Vec<(String, String)> = (0..N)
        .map(|i| (format!("bulk/k{i:04}"), format!("{tag}-value-{i}")))
        .collect();
    seed(&a, &keys);

    // The reported input: a dry run says "would", and writes nothing.
    let out = expect(
        migrate(&a, &c, &["--dry-run", "--concurrency", "16"]),
        b"",
        0,
    );
    assert!(
        out.stdout
            .starts_with("migrate --dry-run: would copy 200, skip 0, fail 0; nothing written\n"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("copied"), "{}", out.stdout);
    assert_eq!(expect(kms_on(&c, &["ls"]), b"", 0).stdout, "");

    expect(migrate(&a, &b, &["--concurrency", "16"]), b"", 0);
    expect(kms_on(&b, &["put", "bulk/k0100"]), b"changed", 0);
    // The reported input: a re-run prints the one conflict, not 200 rows.
    let out = expect(migrate(&a, &b, &["--concurrency", "16"]), b"", 9);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "migrate: copied 0, skipped 199, failed 1 (199 unchanged, 1 conflict)"
    );
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(
        lines[2].starts_with("bulk/k0100") && lines[2].contains("conflict"),
        "{}",
        out.stdout
    );
    // With -v every key has its row.
    let out = expect(migrate(&a, &b, &["-v", "--concurrency", "16"]), b"", 9);
    assert_eq!(out.stdout.lines().count(), 2 + N, "{}", out.stdout);
    // JSON: the details, the failure inside the one document.
    let out = expect(migrate(&a, &b, &["--json", "--concurrency", "16"]), b"", 9);
    let (stream, doc) = one_json_document(&out);
    assert_eq!(stream, "stdout");
    assert_eq!(doc["counts"]["unchanged"], 199);
    assert_eq!(doc["counts"]["conflicts"], 1);
    assert_eq!(doc["error"]["exit"], "partial");
    assert_hidden(&out, &format!("{tag}-value-"));

    // The reported input: `kms ls | head -1` (and with --json), a reader that has gone.
    for args in [
        &["ls"][..],
        &["--json", "ls"],
        &["ls", "--long"],
        &["--json", "ls", "--long"],
    ] {
        let mut cmd = kms_std();
        cmd.arg("--store").arg(&a).args(args);
        let (code, stderr) = run_with_closed_stdout(cmd);
        assert_eq!(code, 141, "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
    let mut cmd = kms_std();
    cmd.args(["diff", &a, &b]);
    let (code, stderr) = run_with_closed_stdout(cmd);
    assert_eq!(code, 141, "{stderr}");
    let out = std::process::Command::new("bash")
        .args([
            "-c",
            "set -o pipefail; \"$KMS\" --store \"$STORE\" ls | head -1",
        ])
        .env("KMS", assert_cmd::cargo::cargo_bin("kms"))
        .env("STORE", &a)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 141)),
        "{:?}: {stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bulk/k0000\n");

    let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    for uri in [&a, &b] {
        let mut args = vec!["rm", "--yes"];
        args.extend_from_slice(&names);
        expect(kms_on(uri, &args), b"", 0);
    }
}

#[test]
fn two_processes_rotating_one_key_give_one_version_and_one_conflict() {
    rotation_race(&vault_uri(&unique("race")));
}
