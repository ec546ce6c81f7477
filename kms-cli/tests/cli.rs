//! The `kms` command without a server: usage errors, configuration, bundles, completions,
//! and that values never reach the output. The store is `memory://` (empty in each process).

mod common;

use common::*;
use predicates::prelude::*;

#[test]
fn unknown_scheme_is_a_usage_error_naming_the_scheme() {
    let out = expect(kms_on("s3://bucket/path", &["get", "a"]), b"", 2);
    assert!(
        out.stderr.contains("unsupported scheme \"s3\""),
        "{}",
        out.stderr
    );
    let out = expect(kms_on("s3://bucket/path", &["--json", "ls"]), b"", 2);
    let err: serde_json::Value = serde_json::from_str(out.stderr.trim()).unwrap();
    assert_eq!(err["error"]["exit_code"], 2);
    assert_eq!(err["error"]["kind"], "configuration");
}

#[test]
fn no_store_is_a_usage_error() {
    let out = expect(kms().args(["ls"]), b"", 2);
    assert!(out.stderr.contains("no store given"), "{}", out.stderr);
}

#[test]
fn bad_arguments_exit_2() {
    expect(kms().args(["migrate", "memory://"]), b"", 2);
    expect(
        kms().args([
            "migrate",
            "memory://",
            "memory://",
            "--skip-existing",
            "--overwrite",
        ]),
        b"",
        2,
    );
    expect(
        kms_on("memory://", &["rotate", "k", "--bytes", "0"]),
        b"",
        2,
    );
    expect(kms().args(["frobnicate"]), b"", 2);
}

#[test]
fn missing_key_exits_3() {
    let out = expect(kms_on("memory://", &["get", "nothing/here"]), b"", 3);
    assert!(out.stderr.contains("not found"), "{}", out.stderr);
}

#[test]
fn a_value_never_shows_without_reveal() {
    let secret = unique("hidden");
    let out = expect(
        kms_on("memory://", &["-vvv", "put", "a/b"]),
        secret.as_bytes(),
        0,
    );
    assert_hidden(&out, &secret);
    let out = expect(
        kms_on("memory://", &["put", "a/b", "--value", &secret]),
        b"",
        0,
    );
    assert!(out.stderr.contains("warning: --value"), "{}", out.stderr);
    assert_hidden(&out, &secret);
    let big = format!("{secret}{}", "x".repeat(70_000));
    let out = expect(kms_on("memory://", &["put", "a/b"]), big.as_bytes(), 7);
    assert!(
        out.stderr.contains("the maximum is 65536"),
        "{}",
        out.stderr
    );
    assert_hidden(&out, &secret);
}

#[test]
fn rm_without_yes_and_without_a_terminal_is_refused() {
    let out = expect(kms_on("memory://", &["rm", "a"]), b"y\n", 2);
    assert!(out.stderr.contains("--yes"), "{}", out.stderr);
}

#[test]
fn put_cas_checks_the_current_version() {
    // Each invocation opens a fresh in-memory store: the key does not exist.
    let out = expect(kms_on("memory://", &["put", "a", "--cas", "1"]), b"v", 6);
    assert!(out.stderr.contains("check-and-set"), "{}", out.stderr);
    let out = expect(kms_on("memory://", &["put", "a", "--cas", "0"]), b"v", 0);
    assert!(out.stdout.contains("version 1"), "{}", out.stdout);
}

#[test]
fn stores_by_config_file_name_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kms.toml");
    write_file(&config, b"default = \"main\"\n[stores.main]\nuri = \"memory://\"\n[stores.small.memory]\nmax_value_len = 4\n");
    let c = config.to_str().unwrap();
    let out = expect(kms().args(["--config", c, "health"]), b"", 0);
    assert!(out.stdout.starts_with("up: "), "{}", out.stdout);
    expect(
        kms().args(["--config", c, "--name", "small", "put", "k"]),
        b"12345",
        7,
    );
    expect(
        kms().args(["--config", c, "--name", "small", "put", "k"]),
        b"1234",
        0,
    );
    expect(
        kms()
            .env("KMS_CONFIG", c)
            .args(["--name", "small", "put", "k"]),
        b"12345",
        7,
    );
    expect(kms().env("KMS_STORE", "memory://").args(["health"]), b"", 0);
    expect(
        kms().args(["--config", c, "--name", "nope", "health"]),
        b"",
        2,
    );
    // A store named in migrate by its configuration name.
    let out = expect(
        kms().args(["--config", c, "migrate", "main", "small", "--json"]),
        b"",
        0,
    );
    assert_eq!(json(&out)["counts"]["copied"], 0);
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish"] {
        kms()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains("migrate"));
    }
}

#[test]
fn import_refuses_plaintext_without_the_loud_flag_and_hides_values() {
    let dir = tempfile::tempdir().unwrap();
    let secret = unique("bundle");
    let plain = dir.path().join("plain.json");
    let b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&secret)
    };
    write_file(
        &plain,
        format!(r#"{{"format":"kms-bundle","version":1,"keys":[{{"name":"a/one","value_base64":"{b64}"}},{{"name":"a/two","value_base64":"{b64}"}}]}}"#).as_bytes(),
    );
    let p = plain.to_str().unwrap();
    let out = expect(kms_on("memory://", &["import", p]), b"", 2);
    assert!(
        out.stderr.contains("--plaintext-i-understand"),
        "{}",
        out.stderr
    );
    let out = expect(
        kms_on("memory://", &["import", p, "--plaintext-i-understand"]),
        b"",
        0,
    );
    assert!(
        out.stdout
            .starts_with("import: copied 2, skipped 0, failed 0"),
        "{}",
        out.stdout
    );
    assert_hidden(&out, &secret);
    let out = expect(
        kms_on(
            "memory://",
            &[
                "import",
                p,
                "--plaintext-i-understand",
                "--dry-run",
                "--json",
            ],
        ),
        b"",
        0,
    );
    assert_eq!(json(&out)["dry_run"], true);
    assert_hidden(&out, &secret);

    let bad = dir.path().join("bad.json");
    write_file(
        &bad,
        br#"{"format":"kms-bundle","version":1,"keys":[{"name":"a","value_base64":"!!"}]}"#,
    );
    expect(
        kms_on(
            "memory://",
            &["import", bad.to_str().unwrap(), "--plaintext-i-understand"],
        ),
        b"",
        7,
    );
    expect(
        kms_on("memory://", &["import", "/nonexistent/bundle"]),
        b"",
        3,
    );
}

#[test]
fn age_recipient_bundles_need_the_identity() {
    let dir = tempfile::tempdir().unwrap();
    let identity = age::x25519::Identity::generate();
    let id_file = dir.path().join("id.txt");
    {
        use age::secrecy::ExposeSecret;
        write_file(
            &id_file,
            format!("{}\n", identity.to_string().expose_secret()).as_bytes(),
        );
    }
    let bundle = dir.path().join("b.age");
    let b = bundle.to_str().unwrap();
    let recipient = identity.to_public().to_string();
    let out = expect(
        kms_on("memory://", &["export", b, "--recipient", &recipient]),
        b"",
        0,
    );
    assert!(
        out.stdout.contains("encrypted to age recipients"),
        "{}",
        out.stdout
    );
    assert_eq!(mode(&bundle), 0o600);
    // Never overwritten.
    expect(
        kms_on("memory://", &["export", b, "--recipient", &recipient]),
        b"",
        6,
    );
    expect(kms_on("memory://", &["import", b]), b"", 2);
    let out = expect(
        kms_on(
            "memory://",
            &["import", b, "--identity", id_file.to_str().unwrap()],
        ),
        b"",
        0,
    );
    assert!(out.stdout.starts_with("import: copied 0"), "{}", out.stdout);
    expect(
        kms_on("memory://", &["export", "x", "--recipient", "age1bogus"]),
        b"",
        2,
    );
}

#[test]
fn export_needs_a_passphrase_source_or_the_loud_flag() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.age");
    let f = file.to_str().unwrap();
    let out = expect(kms_on("memory://", &["export", f]), b"", 2);
    assert!(out.stderr.contains("no passphrase"), "{}", out.stderr);
    assert!(!file.exists());
    let pass = dir.path().join("pass");
    write_file(&pass, b"a long passphrase\n");
    expect(
        kms_on(
            "memory://",
            &["export", f, "--passphrase-file", pass.to_str().unwrap()],
        ),
        b"",
        0,
    );
    expect(
        kms_on(
            "memory://",
            &["import", f, "--passphrase-file", pass.to_str().unwrap()],
        ),
        b"",
        0,
    );
    let plain = dir.path().join("plain.json");
    let out = expect(
        kms_on(
            "memory://",
            &[
                "export",
                plain.to_str().unwrap(),
                "--plaintext-i-understand",
            ],
        ),
        b"",
        0,
    );
    assert!(out.stderr.contains("UNENCRYPTED"), "{}", out.stderr);
    assert_eq!(mode(&plain), 0o600);
}

#[test]
fn health_json_reports_a_store_that_cannot_be_opened() {
    let out = expect(
        kms_on("memory://?nonsense=1", &["health", "--json"]),
        b"",
        2,
    );
    let v = json(&out);
    assert_eq!(v["healthy"], false);
    assert_eq!(v["error"]["exit_code"], 2);
}
