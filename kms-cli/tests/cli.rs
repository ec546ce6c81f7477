//! The `kms` command without a server: usage errors, configuration, bundles, completions,
//! and that values never reach the output. The store is `memory://` (empty in each process).

mod common;

use common::*;
use predicates::prelude::*;
use std::process::Stdio;

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

/// A store URI with an inline credential, and a config path naming one, as an operator's
/// environment may hold them.
const TOKEN: &str = "T0Pz3cret";

fn inline_token_uri() -> String {
    format!("vault+http://127.0.0.1:9/secret?auth.token={TOKEN}&timeout.all=2s")
}

const COMMANDS: [&str; 14] = [
    "get",
    "put",
    "ls",
    "rm",
    "versions",
    "rotate",
    "copy",
    "migrate",
    "diff",
    "export",
    "import",
    "health",
    "watch",
    "completions",
];

#[test]
fn help_never_shows_the_value_of_an_environment_variable() {
    let mut helps: Vec<Vec<String>> = vec![
        vec!["--help".into()],
        vec!["-h".into()],
        vec!["help".into()],
    ];
    for c in COMMANDS {
        helps.push(vec![c.into(), "--help".into()]);
        helps.push(vec![c.into(), "-h".into()]);
        helps.push(vec!["help".into(), c.into()]);
    }
    for args in helps {
        let out = expect(
            kms()
                .env("KMS_STORE", inline_token_uri())
                .env("KMS_CONFIG", format!("/etc/{TOKEN}.toml"))
                .args(&args),
            b"",
            0,
        );
        // `-h` is the short help, without the variables.
        if !args.contains(&"-h".to_owned()) {
            assert!(
                out.stdout.contains("[env: KMS_STORE]"),
                "{args:?}: {}",
                out.stdout
            );
        }
        assert_hidden(&out, TOKEN);
    }
}

#[test]
fn usage_errors_never_echo_a_typed_argument() {
    let secret = "s3cretV4lue";
    let cases: Vec<Vec<String>> = [
        // The reported input: a value where no argument is expected.
        &["put", "app/k", secret][..],
        &["put", "app/k", "--", secret],
        &["put", "app/k", "--value", "x", secret],
        &["rotate", "app/k", secret],
        &["get", "app/k", secret],
        &["get", "app/k", &format!("--reveal={secret}")],
        &["get", "app/k", &format!("--{secret}")],
        &["get", "app/k", &format!("-{secret}")],
        &["put", "app/k", &format!("--vaule={secret}")],
        &[secret],
        &[secret, "get", "app/k"],
        &["rotate", "app/k", "--encoding", secret],
        &["rotate", "app/k", "--bytes", secret],
        &["versions", "app/k", "--limit", secret],
        &["watch", "app/k", "--interval", &format!("5{secret}")],
        &["migrate", "a", "b", "--concurrency", secret],
        &["completions", secret],
        &["rm", "--yes", "a", &format!("--{secret}=1")],
    ]
    .iter()
    .map(|a| a.iter().map(|s| (*s).to_owned()).collect())
    .collect();
    for args in cases {
        let out = expect(kms().env("KMS_STORE", "memory://").args(&args), b"", 2);
        assert_hidden(&out, secret);
        assert!(out.stderr.starts_with("kms: "), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
        let mut json_args = vec!["--json".to_owned()];
        json_args.extend(args.iter().cloned());
        let out = expect(kms().env("KMS_STORE", "memory://").args(&json_args), b"", 2);
        assert_hidden(&out, secret);
        let (stream, doc) = one_json_document(&out);
        assert_eq!(stream, "stderr", "{args:?}");
        assert_eq!(doc["error"]["exit"], "usage", "{args:?}");
    }
    // Still useful: where the stray argument is and what to do instead.
    let out = expect(kms().args(["put", "app/k", secret]), b"", 2);
    assert!(out.stderr.contains("argument 3"), "{}", out.stderr);
    assert!(out.stderr.contains("stdin or --file"), "{}", out.stderr);
    assert!(out.stderr.contains("Usage: kms put"), "{}", out.stderr);
}

#[test]
fn debug_logs_json_output_and_errors_never_show_an_inline_token() {
    for args in [
        &["-vvv", "get", "app/k"][..],
        &["-vvv", "--json", "get", "app/k"],
        &["-vvv", "--json", "health"],
        &["-vvv", "health"],
        &["-vvv", "ls"],
    ] {
        let out = run(kms_on(&inline_token_uri(), args), b"");
        assert_ne!(out.code, 0, "{args:?}");
        assert_hidden(&out, TOKEN);
    }
    let out = run(
        kms().args(["-vvv", "--json", "diff", &inline_token_uri(), "memory://"]),
        b"",
    );
    assert_hidden(&out, TOKEN);
    let out = run(
        kms().args(["migrate", "memory://", &inline_token_uri(), "--dry-run"]),
        b"",
    );
    assert_hidden(&out, TOKEN);
}

#[test]
fn export_never_echoes_a_recipient_that_is_a_secret_key() {
    let identity = age::x25519::Identity::generate();
    let secret = {
        use age::secrecy::ExposeSecret;
        identity.to_string().expose_secret().to_owned()
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.age");
    let out = expect(
        kms_on(
            "memory://",
            &["export", file.to_str().unwrap(), "--recipient", &secret],
        ),
        b"",
        2,
    );
    assert_hidden(&out, &secret);
    assert_hidden(&out, &secret[15..40]);
    assert!(out.stderr.contains("age-keygen -y"), "{}", out.stderr);
    let out = expect(
        kms_on(
            "memory://",
            &["export", "x", "--recipient", "age1T0Pz3cretbogus"],
        ),
        b"",
        2,
    );
    assert_hidden(&out, "T0Pz3cret");
}

#[test]
fn json_usage_errors_are_one_document_on_stderr() {
    for args in [
        &["--json", "get"][..],
        &["get", "--json"],
        &["--json"],
        &["--json", "frobnicate"],
        &["--json", "migrate", "memory://"],
        &["--json", "rotate", "k", "--bytes", "0"],
        &["--json", "--store", "memory://", "--name", "x", "ls"],
    ] {
        let out = expect(kms().args(args), b"", 2);
        let (stream, doc) = one_json_document(&out);
        assert_eq!(stream, "stderr", "{args:?}");
        assert_eq!(doc["error"]["exit_code"], 2, "{args:?}");
        assert_eq!(doc["error"]["exit"], "usage", "{args:?}");
        assert!(doc["error"]["message"].as_str().unwrap().len() > 10);
    }
    // After `--`, `--json` is an argument, not the option: the error is text.
    let out = expect(kms().args(["get", "k", "--", "--json"]), b"", 2);
    assert!(out.stderr.starts_with("kms: "), "{}", out.stderr);
}

#[test]
fn json_health_of_a_store_that_is_down_is_one_document_naming_the_backend() {
    // The reported input: Vault is not running.
    let out = expect(kms_on(&inline_token_uri(), &["--json", "health"]), b"", 5);
    let (stream, doc) = one_json_document(&out);
    assert_eq!(stream, "stdout");
    assert_eq!(doc["backend"], "vault");
    assert_eq!(doc["healthy"], false);
    assert_eq!(doc["error"]["exit_code"], 5);
    assert_hidden(&out, TOKEN);
    // A configuration that does not parse still names its backend.
    let out = expect(
        kms_on("memory://?nonsense=1", &["--json", "health"]),
        b"",
        2,
    );
    let (stream, doc) = one_json_document(&out);
    assert_eq!(stream, "stdout");
    assert_eq!(doc["backend"], "memory");
    // A store of a configuration file, by name.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kms.toml");
    write_file(
        &config,
        b"[stores.main.vault]\naddress = \"http://127.0.0.1:9\"\nmount = \"secret\"\nauth.token = \"x\"\n[stores.main.timeout]\nall = \"2s\"\n",
    );
    let out = run(
        kms().args(["--config", config.to_str().unwrap(), "--json", "health"]),
        b"",
    );
    assert_ne!(out.code, 0);
    let (stream, doc) = one_json_document(&out);
    assert_eq!(stream, "stdout", "{doc}");
    assert_eq!(doc["backend"], "vault", "{doc}");
}

#[test]
fn with_json_every_outcome_is_exactly_one_document() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.json");
    let cases: Vec<(Vec<String>, &[u8], i32, &str)> = vec![
        (vec!["put".into(), "a/b".into()], b"v", 0, "stdout"),
        (
            vec!["put".into(), "a/b".into(), "--value".into(), "v".into()],
            b"",
            0,
            "stdout",
        ),
        (vec!["get".into(), "a/missing".into()], b"", 3, "stderr"),
        (vec!["get".into(), "/bad//name".into()], b"", 7, "stderr"),
        (vec!["put".into(), "a/b".into()], b"", 7, "stderr"),
        (
            vec!["put".into(), "a/b".into(), "--cas".into(), "3".into()],
            b"v",
            6,
            "stderr",
        ),
        (
            vec!["rm".into(), "--yes".into(), "a".into()],
            b"",
            3,
            "stdout",
        ),
        (
            vec!["rm".into(), "--yes".into(), "a".into(), "b".into()],
            b"",
            9,
            "stdout",
        ),
        (vec!["rm".into(), "a".into()], b"y\n", 2, "stderr"),
        (vec!["ls".into()], b"", 0, "stdout"),
        (vec!["health".into()], b"", 0, "stdout"),
        (vec!["versions".into(), "a".into()], b"", 3, "stderr"),
        (vec!["rotate".into(), "a".into()], b"", 3, "stderr"),
        (
            vec![
                "export".into(),
                plain.to_str().unwrap().into(),
                "--plaintext-i-understand".into(),
            ],
            b"",
            0,
            "stdout",
        ),
        (
            vec!["diff".into(), "memory://".into(), "memory://".into()],
            b"",
            0,
            "stdout",
        ),
        (
            vec!["migrate".into(), "memory://".into(), "s3://x".into()],
            b"",
            2,
            "stderr",
        ),
    ];
    for (args, stdin, code, stream) in cases {
        let mut cmd = kms_on("memory://", &["--json"]);
        cmd.args(&args);
        let out = expect(cmd, stdin, code);
        let (got, doc) = one_json_document(&out);
        assert_eq!(got, stream, "{args:?}: {doc}");
        if code != 0 {
            assert_eq!(doc["error"]["exit_code"], code, "{args:?}: {doc}");
        }
        if args.contains(&"--value".to_owned())
            || args.contains(&"--plaintext-i-understand".to_owned())
        {
            assert!(
                doc["warnings"][0].as_str().unwrap().contains("--"),
                "{args:?}: {doc}"
            );
        }
    }
}

#[test]
fn a_closed_stdout_ends_the_command_quietly_with_141() {
    for args in [
        &["--store", "memory://", "health"][..],
        &["--store", "memory://", "--json", "health"],
        &["--store", "memory://", "--json", "ls"],
        &["--help"],
        &["put", "--help"],
        &["--version"],
        &["completions", "bash"],
        &["completions", "zsh"],
        &["diff", "memory://", "memory://"],
        &["migrate", "memory://", "memory://"],
        &["--json", "migrate", "memory://", "memory://"],
    ] {
        let mut cmd = kms_std();
        cmd.args(args);
        let (code, stderr) = run_with_closed_stdout(cmd);
        assert_eq!(code, 141, "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
    // A write, then the report of it.
    let mut cmd = kms_std();
    cmd.args(["--store", "memory://", "put", "k", "--value", "v"]);
    let (code, stderr) = run_with_closed_stdout(cmd);
    assert_eq!(code, 141, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // A failure with nothing to print on stdout keeps its own exit code.
    let mut cmd = kms_std();
    cmd.args(["--store", "memory://", "get", "missing"]);
    let (code, stderr) = run_with_closed_stdout(cmd);
    assert_eq!(code, 3, "{stderr}");
}

#[test]
fn a_closed_stderr_changes_nothing() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = kms_std()
        .args(["-vvv", "--store", "memory://", "get", "missing"])
        .stdout(Stdio::piped())
        .stderr(writer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = kms_std()
        .args(["-vvv", "--store", "memory://", "put", "k", "--value", "v"])
        .stdout(Stdio::piped())
        .stderr(writer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("stored k"));
}

/// A second store mistyped as a URI without `://` (`vault+http:/host…?auth.token=…`) is not a
/// store name: refused without echoing it, for every command that takes a store argument.
#[test]
fn a_mistyped_store_uri_argument_is_never_echoed() {
    let canary = "CANARYTOKEN7731";
    let bad = format!("vault+http:/127.0.0.1:8200/secret?auth.token={canary}");
    for args in [
        vec!["diff", "memory://", bad.as_str()],
        vec!["migrate", "memory://", bad.as_str()],
        vec!["copy", "--to", bad.as_str(), "a", "b"],
        vec!["--json", "diff", bad.as_str(), "memory://"],
    ] {
        let out = run(kms_on("memory://", &args), b"");
        assert_eq!(out.code, 2, "{args:?}: {}", out.both());
        assert!(!out.both().contains(canary), "{args:?}: {}", out.both());
        assert!(out.both().contains("not shown"), "{args:?}: {}", out.both());
    }
}
