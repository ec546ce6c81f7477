//! Shared helpers of the `kms` command tests: run the binary as a user would, against a store
//! URI, and check that secrets never leak into its output.
#![allow(dead_code, missing_docs)]

use std::borrow::BorrowMut;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command as StdCommand, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use assert_cmd::Command;

/// A name no other test run uses: pid, time and a counter.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "kmscli-{tag}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn require(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: source /work/tools/peers.env (or run under scripts/test)")
    })
}

/// A store URI for the shared OpenBao dev server, KV v2 mount `secret`, under `prefix`.
pub fn vault_uri(prefix: &str) -> String {
    let addr = require("KMS_TEST_VAULT_ADDR");
    let _ = require("KMS_TEST_VAULT_TOKEN");
    format!("vault+{addr}/secret/{prefix}?auth.token=env:KMS_TEST_VAULT_TOKEN")
}

/// The same with a given token (for denied-token tests).
pub fn vault_uri_with_token_var(prefix: &str, var: &str) -> String {
    let addr = require("KMS_TEST_VAULT_ADDR");
    format!("vault+{addr}/secret/{prefix}?auth.token=env:{var}")
}

/// A store URI for moto (Secrets Manager), region us-east-1, under namespace `prefix`;
/// secrets are deleted at once (no recovery window) so names can be reused.
pub fn aws_uri(prefix: &str) -> String {
    let endpoint = require("KMS_TEST_AWS_ENDPOINT");
    format!("aws-sm://us-east-1/{prefix}?endpoint_url={endpoint}&deletion=force")
}

/// A kernel-keyring store URI with its own service name.
pub fn keyring_uri(service: &str) -> String {
    format!("keyring://{service}?platform_store=keyutils")
}

/// The `kms` binary with a clean environment: no `KMS_*` from the caller, dummy AWS
/// credentials for moto.
pub fn kms() -> Command {
    let mut cmd = Command::cargo_bin("kms").expect("the kms binary");
    for (k, _) in std::env::vars() {
        if (k.starts_with("KMS_") && !k.starts_with("KMS_TEST_")) || k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("NO_COLOR", "1");
    cmd
}

/// `kms --store URI ARGS…`.
pub fn kms_on(uri: &str, args: &[&str]) -> Command {
    let mut cmd = kms();
    cmd.arg("--store").arg(uri).args(args);
    cmd
}

/// The output of a finished command.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn both(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `cmd` with `stdin` bytes and returns its output (never panics on a non-zero exit).
pub fn run(mut cmd: impl BorrowMut<Command>, stdin: &[u8]) -> Out {
    let out = cmd
        .borrow_mut()
        .write_stdin(stdin.to_vec())
        .output()
        .expect("run kms");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs and asserts the exit code, with the output in the failure message.
#[track_caller]
pub fn expect(cmd: impl BorrowMut<Command>, stdin: &[u8], code: i32) -> Out {
    let out = run(cmd, stdin);
    assert_eq!(
        out.code, code,
        "exit {} (wanted {code})\nstdout: {}\nstderr: {}",
        out.code, out.stdout, out.stderr
    );
    out
}

/// Asserts that `secret` is nowhere in the output.
#[track_caller]
pub fn assert_hidden(out: &Out, secret: &str) {
    assert!(
        !out.both().contains(secret),
        "the secret leaked:\n{}",
        out.both()
    );
}

/// Parses stdout as one JSON document.
#[track_caller]
pub fn json(out: &Out) -> serde_json::Value {
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.stdout))
}

/// Writes `keys` (name, value) as a plaintext bundle file and imports it into `uri`, with
/// concurrency 16: a fast way to seed many keys.
pub fn seed(uri: &str, keys: &[(String, String)]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.json");
    let entries: Vec<_> = keys
        .iter()
        .map(|(k, v)| {
            use base64::Engine as _;
            serde_json::json!({"name": k, "value_base64": base64::engine::general_purpose::STANDARD.encode(v)})
        })
        .collect();
    let doc = serde_json::json!({"format": "kms-bundle", "version": 1, "keys": entries});
    std::fs::write(&path, doc.to_string()).unwrap();
    let out = expect(
        kms_on(
            uri,
            &[
                "import",
                path.to_str().unwrap(),
                "--plaintext-i-understand",
                "--concurrency",
                "16",
            ],
        ),
        b"",
        0,
    );
    assert!(
        out.stdout.contains(&format!("copied {}", keys.len())),
        "{}",
        out.stdout
    );
}

/// The mode bits of a file.
pub fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every command of the `kms` tool against one store, as a user runs them. `base` builds a
/// store URI for a prefix (or service); `max_value_len` is the backend's limit; `versions`
/// whether it keeps versions with counter ids (Vault) — AWS keeps opaque ids, the keyring none.
pub fn every_command(base: &dyn Fn(&str) -> String, max_value_len: usize, versions: Versions) {
    let tag = unique("all");
    let store = base(&format!("{tag}-a"));
    let other = base(&format!("{tag}-b"));
    let third = base(&format!("{tag}-c"));
    let secret = format!("s3cret-{tag}");

    // health
    let out = expect(kms_on(&store, &["health"]), b"", 0);
    assert!(out.stdout.starts_with("up: "), "{}", out.stdout);
    let out = expect(kms_on(&store, &["health", "--json"]), b"", 0);
    assert_eq!(json(&out)["healthy"], true);

    // put from stdin, get without and with --reveal
    let out = expect(kms_on(&store, &["put", "app/db"]), secret.as_bytes(), 0);
    assert!(out.stdout.starts_with("stored app/db"), "{}", out.stdout);
    assert_hidden(&out, &secret);
    let out = expect(kms_on(&store, &["get", "app/db"]), b"", 0);
    assert!(
        out.stdout.contains(&format!("{} bytes", secret.len())),
        "{}",
        out.stdout
    );
    assert_hidden(&out, &secret);
    let out = expect(kms_on(&store, &["-vvv", "get", "app/db", "--json"]), b"", 0);
    assert_hidden(&out, &secret);
    assert_eq!(json(&out)["key"], "app/db");
    let out = expect(kms_on(&store, &["get", "app/db", "--reveal"]), b"", 0);
    assert!(out.stdout.contains(&secret), "{}", out.stdout);

    // get --output: a new file, mode 0600, never overwritten
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("value");
    let out = expect(
        kms_on(
            &store,
            &["get", "app/db", "--output", file.to_str().unwrap()],
        ),
        b"",
        0,
    );
    assert_hidden(&out, &secret);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), secret);
    assert_eq!(mode(&file), 0o600);
    expect(
        kms_on(
            &store,
            &["get", "app/db", "--output", file.to_str().unwrap()],
        ),
        b"",
        6,
    );

    // put --file, put --value (warned), --cas unsupported
    let vfile = dir.path().join("in");
    std::fs::write(&vfile, format!("file-{secret}")).unwrap();
    let out = expect(
        kms_on(
            &store,
            &["put", "app/api", "--file", vfile.to_str().unwrap()],
        ),
        b"",
        0,
    );
    assert_hidden(&out, &secret);
    let argv_secret = format!("argv-{tag}");
    let out = expect(
        kms_on(&store, &["put", "app/argv", "--value", &argv_secret]),
        b"",
        0,
    );
    assert!(out.stderr.contains("warning: --value"), "{}", out.stderr);
    assert_hidden(&out, &argv_secret);
    // Check-and-set against a version that is not the current one: a Conflict where the
    // backend can check and write atomically (Vault KV v2's counters, AWS's stage move),
    // Unsupported elsewhere; nothing is written either way.
    let (cas_version, cas_exit) = match versions {
        Versions::Counter => ("999", 6),
        Versions::Opaque => ("0123456789abcdef0123456789abcdef", 6),
        Versions::None => ("999", 8),
    };
    let out = expect(
        kms_on(&store, &["put", "app/db", "--cas", cas_version]),
        b"never-written",
        cas_exit,
    );
    assert!(out.stderr.contains("check-and-set"), "{}", out.stderr);
    let out = expect(kms_on(&store, &["get", "app/db", "--reveal"]), b"", 0);
    assert!(
        out.stdout.contains(&secret),
        "--cas must not write: {}",
        out.stdout
    );

    // bad input: missing key, oversized and empty values, a bad name
    let out = expect(kms_on(&store, &["get", "app/missing"]), b"", 3);
    assert!(out.stderr.contains("not found"), "{}", out.stderr);
    let big = "B".repeat(max_value_len + 1);
    let out = expect(kms_on(&store, &["put", "app/big"]), big.as_bytes(), 7);
    assert!(out.stderr.contains("bytes"), "{}", out.stderr);
    assert!(
        !out.both().contains(&"B".repeat(64)),
        "the value leaked: {}",
        out.stderr
    );
    expect(kms_on(&store, &["get", "app/big"]), b"", 3);
    expect(kms_on(&store, &["put", "app/empty"]), b"", 7);
    expect(kms_on(&store, &["get", "/bad//name"]), b"", 7);

    // ls
    let out = expect(kms_on(&store, &["ls"]), b"", 0);
    let names: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(names, ["app/api", "app/argv", "app/db"]);
    let out = expect(kms_on(&store, &["ls", "app/d", "--long"]), b"", 0);
    assert!(out.stdout.starts_with("NAME"), "{}", out.stdout);
    assert!(
        out.stdout.contains("app/db") && !out.stdout.contains("app/api"),
        "{}",
        out.stdout
    );
    let out = expect(kms_on(&store, &["ls", "--json"]), b"", 0);
    assert_eq!(json(&out)["keys"].as_array().unwrap().len(), 3);

    // rotate: old and new version, never the value; the value changes
    let out = expect(kms_on(&store, &["rotate", "app/db"]), b"", 0);
    assert!(
        out.stdout.starts_with("rotated app/db: version "),
        "{}",
        out.stdout
    );
    let out = expect(
        kms_on(&store, &["get", "app/db", "--json", "--reveal"]),
        b"",
        0,
    );
    let v = json(&out);
    assert_ne!(v["value"], secret.as_str());
    let out = expect(
        kms_on(
            &store,
            &[
                "rotate",
                "app/api",
                "--bytes",
                "16",
                "--encoding",
                "hex",
                "--json",
            ],
        ),
        b"",
        0,
    );
    let r = json(&out);
    let out = expect(
        kms_on(&store, &["get", "app/api", "--json", "--reveal"]),
        b"",
        0,
    );
    let got = json(&out);
    assert_eq!(got["value"].as_str().unwrap().len(), 32);
    assert_eq!(got["version"], r["new_version"]);
    expect(kms_on(&store, &["rotate", "app/nothing"]), b"", 3);

    // versions
    let out = expect(kms_on(&store, &["versions", "app/db"]), b"", 0);
    assert!(out.stdout.contains("current"), "{}", out.stdout);
    match versions {
        Versions::Counter => assert!(out.stdout.contains("earlier"), "{}", out.stdout),
        Versions::Opaque => assert!(
            out.stdout.contains("cannot be enumerated"),
            "{}",
            out.stdout
        ),
        Versions::None => assert!(
            out.stdout.contains("keeps no earlier versions"),
            "{}",
            out.stdout
        ),
    }

    // copy within the store and to another
    let out = expect(
        kms_on(&store, &["copy", "app/argv", "app/argv-copy"]),
        b"",
        0,
    );
    assert!(
        out.stdout.starts_with("copied app/argv -> app/argv-copy"),
        "{}",
        out.stdout
    );
    expect(kms_on(&store, &["copy", "app/db", "app/argv-copy"]), b"", 6);
    expect(
        kms_on(&store, &["copy", "app/db", "app/argv-copy", "--overwrite"]),
        b"",
        0,
    );
    expect(kms_on(&store, &["copy", "app/none", "app/x"]), b"", 3);

    // migrate to another prefix, re-run, diff
    let out = expect(migrate(&store, &other, &["--concurrency", "4"]), b"", 0);
    assert!(
        out.stdout
            .starts_with("migrate: copied 4, skipped 0, failed 0"),
        "{}",
        out.stdout
    );
    let out = expect(migrate(&store, &other, &[]), b"", 0);
    assert!(
        out.stdout
            .starts_with("migrate: copied 0, skipped 4, failed 0"),
        "{}",
        out.stdout
    );
    let out = expect(kms().args(["diff", &store, &other]), b"", 0);
    assert!(
        out.stdout
            .contains("0 only in A, 0 only in B, 0 different, 4 equal"),
        "{}",
        out.stdout
    );
    expect(kms_on(&other, &["put", "app/api"]), b"changed", 0);
    expect(kms_on(&other, &["put", "app/only-b"]), b"b", 0);
    let out = expect(kms().args(["diff", &store, &other, "--json"]), b"", 0);
    let d = json(&out);
    assert_eq!(d["different"], serde_json::json!(["app/api"]));
    assert_eq!(d["only_in_b"], serde_json::json!(["app/only-b"]));
    assert_hidden(&out, "changed");
    expect(kms().args(["diff", &store, &other, "--exit-code"]), b"", 1);
    let out = expect(migrate(&store, &other, &["--dry-run"]), b"", 9);
    assert!(out.stdout.contains("conflict"), "{}", out.stdout);
    let out = expect(migrate(&store, &other, &["--skip-existing"]), b"", 0);
    assert!(out.stdout.contains("skipped 4"), "{}", out.stdout);
    let out = expect(migrate(&store, &other, &["--overwrite", "--json"]), b"", 0);
    assert_eq!(json(&out)["counts"]["copied"], 1);

    // export (encrypted, 0600) and import into a third prefix
    let bundle = dir.path().join("bundle.age");
    let out = expect(
        kms_on(&store, &["export", bundle.to_str().unwrap()])
            .env("KMS_PASSPHRASE", "correct horse"),
        b"",
        0,
    );
    assert!(out.stdout.contains("exported 4 key(s)"), "{}", out.stdout);
    assert_eq!(mode(&bundle), 0o600);
    let raw = std::fs::read(&bundle).unwrap();
    assert!(raw.starts_with(b"age-encryption.org/v1"));
    assert!(!String::from_utf8_lossy(&raw).contains(&argv_secret));
    expect(
        kms_on(&third, &["import", bundle.to_str().unwrap()]).env("KMS_PASSPHRASE", "wrong"),
        b"",
        4,
    );
    let out = expect(
        kms_on(&third, &["import", bundle.to_str().unwrap()])
            .env("KMS_PASSPHRASE", "correct horse"),
        b"",
        0,
    );
    assert!(out.stdout.starts_with("import: copied 4"), "{}", out.stdout);
    assert_hidden(&out, &argv_secret);
    let out = expect(kms().args(["diff", &store, &third]), b"", 0);
    assert!(out.stdout.contains("4 equal"), "{}", out.stdout);

    // watch: the initial line, then a change
    watch_sees_a_change(&store, "app/argv");

    // rm: refused without a terminal and --yes, then done
    expect(kms_on(&store, &["rm", "app/argv"]), b"y\n", 2);
    expect(kms_on(&store, &["get", "app/argv"]), b"", 0);
    let out = expect(
        kms_on(&store, &["rm", "--yes", "app/argv", "app/argv-copy"]),
        b"",
        0,
    );
    assert!(out.stdout.contains("removed app/argv\n"), "{}", out.stdout);
    expect(kms_on(&store, &["get", "app/argv"]), b"", 3);
    expect(kms_on(&store, &["rm", "--yes", "app/argv"]), b"", 3);

    // clean up what is left
    for (uri, keys) in [
        (&store, &["app/db", "app/api"][..]),
        (
            &other,
            &[
                "app/db",
                "app/api",
                "app/argv",
                "app/argv-copy",
                "app/only-b",
            ][..],
        ),
        (
            &third,
            &["app/db", "app/api", "app/argv", "app/argv-copy"][..],
        ),
    ] {
        let mut args = vec!["rm", "--yes"];
        args.extend_from_slice(keys);
        expect(kms_on(uri, &args), b"", 0);
    }
}

/// How a backend names versions.
#[derive(Clone, Copy, Debug)]
pub enum Versions {
    /// Counters (`1`, `2` …): earlier versions are listed.
    Counter,
    /// Opaque ids (AWS UUIDs): said to be not enumerable.
    Opaque,
    /// No versions kept (the keyring).
    None,
}

/// `kms migrate FROM TO ARGS…`.
pub fn migrate(from: &str, to: &str, args: &[&str]) -> Command {
    let mut cmd = kms();
    cmd.args(["migrate", from, to]).args(args);
    cmd
}

/// Starts `kms watch KEY --changes 1`, waits for its first line, writes a new value and
/// checks that it reports the change and exits 0.
pub fn watch_sees_a_change(store: &str, key: &str) {
    let bin = assert_cmd::cargo::cargo_bin("kms");
    let mut child = StdCommand::new(bin)
        .args([
            "--store",
            store,
            "watch",
            key,
            "--interval",
            "200ms",
            "--changes",
            "1",
        ])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains(&format!("{key}  initial")), "{first}");
    expect(kms_on(store, &["put", key]), b"a new value for watch", 0);
    let second = lines.next().unwrap().unwrap();
    assert!(second.contains(&format!("{key}  changed")), "{second}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "watch did not exit after --changes 1"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes bytes to a new file.
pub fn write_file(path: &std::path::Path, bytes: &[u8]) {
    std::fs::File::create(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

/// The `kms` binary as a plain `std::process::Command`, with the environment of [`kms`].
pub fn kms_std() -> StdCommand {
    let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin("kms"));
    for (k, _) in std::env::vars() {
        if (k.starts_with("KMS_") && !k.starts_with("KMS_TEST_")) || k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("NO_COLOR", "1");
    cmd
}

/// Runs `cmd` with a stdout whose reader has already gone (as `kms … | head -1` once head
/// exits): every write to stdout fails with EPIPE. Returns the exit code and stderr.
pub fn run_with_closed_stdout(mut cmd: StdCommand) -> (i32, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = cmd
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts that the run printed exactly one JSON document, on exactly one of stdout and
/// stderr, and returns it with the stream's name.
#[track_caller]
pub fn one_json_document(out: &Out) -> (&'static str, serde_json::Value) {
    let (name, text, other) = if out.stdout.trim().is_empty() {
        ("stderr", &out.stderr, &out.stdout)
    } else {
        ("stdout", &out.stdout, &out.stderr)
    };
    assert!(
        other.trim().is_empty(),
        "both streams written:\nstdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    let mut docs = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
    let doc = docs
        .next()
        .unwrap_or_else(|| panic!("no JSON document on {name}: {text}"))
        .unwrap_or_else(|e| panic!("not JSON on {name} ({e}): {text}"));
    assert!(
        docs.next().is_none(),
        "more than one document on {name}: {text}"
    );
    (name, doc)
}

/// `get`/`put`/`rotate --field` on a store that holds whole values (AWS, the keyrings): the
/// value is a JSON object read and written back with one field changed, the others kept.
/// `cas_exit` is what `put --field --cas` answers (8 where the store has no check-and-set).
pub fn field_on_whole_values(uri: &str, cas_exit: i32) {
    let secret = unique("pw");
    let doc = format!(r#"{{"username":"app","password":"{secret}","port":5432}}"#);
    expect(kms_on(uri, &["put", "db"]), doc.as_bytes(), 0);
    let out = expect(
        kms_on(
            uri,
            &["get", "db", "--field", "password", "--json", "--reveal"],
        ),
        b"",
        0,
    );
    assert_eq!(json(&out)["value"], secret.as_str());
    assert_eq!(json(&out)["field"], "password");
    let out = expect(kms_on(uri, &["get", "db", "--field", "password"]), b"", 0);
    assert!(out.stdout.contains("field    password"), "{}", out.stdout);
    assert_hidden(&out, &secret);
    let out = expect(
        kms_on(uri, &["get", "db", "--field", "port", "--json", "--reveal"]),
        b"",
        0,
    );
    assert_eq!(json(&out)["value"], "5432");
    let out = expect(kms_on(uri, &["get", "db", "--field", "nope"]), b"", 1);
    assert!(out.stderr.contains("'nope'"), "{}", out.stderr);
    assert_hidden(&out, &secret);

    // put --field: that field only, the others kept.
    let new = unique("new");
    let out = expect(
        kms_on(uri, &["put", "db", "--field", "password"]),
        new.as_bytes(),
        0,
    );
    assert!(
        out.stdout.starts_with("stored field password of db"),
        "{}",
        out.stdout
    );
    assert_hidden(&out, &new);
    let whole = |uri: &str| {
        let out = expect(kms_on(uri, &["get", "db", "--json", "--reveal"]), b"", 0);
        serde_json::from_str::<serde_json::Value>(json(&out)["value"].as_str().unwrap()).unwrap()
    };
    assert_eq!(
        whole(uri),
        serde_json::json!({"username": "app", "password": new, "port": 5432})
    );
    expect(
        kms_on(uri, &["put", "db", "--field", "password", "--cas", "1"]),
        b"never",
        cas_exit,
    );
    assert_eq!(whole(uri)["password"], new.as_str());

    // rotate --field: fresh base64url text in that field, the others kept; the field must
    // exist.
    let out = expect(
        kms_on(uri, &["rotate", "db", "--field", "password"]),
        b"",
        0,
    );
    assert!(
        out.stdout.starts_with("rotated field password of db"),
        "{}",
        out.stdout
    );
    let after = whole(uri);
    let pw = after["password"].as_str().unwrap();
    assert_eq!(pw.len(), 43);
    assert!(
        pw.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{pw}"
    );
    assert_eq!(after["username"], "app");
    assert_eq!(after["port"], 5432);
    expect(kms_on(uri, &["rotate", "db", "--field", "nope"]), b"", 1);
    assert_eq!(whole(uri), after);
    expect(kms_on(uri, &["rotate", "none", "--field", "x"]), b"", 3);

    // A new key is created as one field only with --create; a value that is not a JSON
    // object is refused.
    let out = expect(kms_on(uri, &["put", "one", "--field", "f"]), b"v", 3);
    assert!(out.stderr.contains("--create"), "{}", out.stderr);
    expect(kms_on(uri, &["get", "one"]), b"", 3);
    expect(
        kms_on(uri, &["put", "one", "--field", "f", "--create"]),
        b"v",
        0,
    );
    let out = expect(kms_on(uri, &["get", "one", "--json", "--reveal"]), b"", 0);
    assert_eq!(json(&out)["value"], r#"{"f":"v"}"#);
    expect(kms_on(uri, &["put", "plain"]), secret.as_bytes(), 0);
    let out = expect(kms_on(uri, &["put", "plain", "--field", "f"]), b"v", 1);
    assert!(out.stderr.contains("not a JSON object"), "{}", out.stderr);
    assert_hidden(&out, &secret);
    let out = expect(kms_on(uri, &["get", "plain", "--field", "f"]), b"", 1);
    assert_hidden(&out, &secret);

    expect(kms_on(uri, &["rm", "--yes", "db", "one", "plain"]), b"", 0);
}

/// Two `kms rotate --stdin` processes of one key, each holding at the point where it has read
/// the key and asks for the new value (blocked reading stdin): the second to write loses.
/// Exactly one new version (the winner's), one exit 6 (conflict), no lost update.
pub fn rotation_race(uri: &str) {
    let out = expect(kms_on(uri, &["put", "k", "--json"]), b"first", 0);
    let first = json(&out)["version"].clone();
    let spawn = || {
        kms_std()
            .args(["--store", uri, "--json", "rotate", "k", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut a = spawn();
    wait_reading_stdin(a.id());
    let mut b = spawn();
    wait_reading_stdin(b.id());
    // Both have read version `first`. B writes first and wins; A's check-and-set then fails.
    b.stdin.take().unwrap().write_all(b"from-b").unwrap();
    let won = b.wait_with_output().unwrap();
    assert_eq!(
        won.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&won.stderr)
    );
    let won: serde_json::Value = serde_json::from_slice(&won.stdout).unwrap();
    assert_eq!(won["old_version"], first);
    assert_eq!(won["checked"], true);
    a.stdin.take().unwrap().write_all(b"from-a").unwrap();
    let lost = a.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&lost.stderr);
    assert_eq!(lost.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("conflict"), "{stderr}");
    let out = expect(kms_on(uri, &["get", "k", "--json", "--reveal"]), b"", 0);
    let now = json(&out);
    assert_eq!(now["value"], "from-b");
    assert_eq!(now["version"], won["new_version"]);
    if let (Some(v1), Some(v2)) = (
        first.as_str().and_then(|v| v.parse::<u64>().ok()),
        won["new_version"]
            .as_str()
            .and_then(|v| v.parse::<u64>().ok()),
    ) {
        assert_eq!(v2, v1 + 1, "exactly one new version");
    }

    // A JSON document is not replaced whole unless asked; a missing key is not created.
    let doc = r#"{"username":"app","password":"p"}"#;
    expect(kms_on(uri, &["put", "doc"]), doc.as_bytes(), 0);
    let out = expect(kms_on(uri, &["rotate", "doc"]), b"", 7);
    assert!(out.stderr.contains("--whole"), "{}", out.stderr);
    let out = expect(kms_on(uri, &["get", "doc", "--json", "--reveal"]), b"", 0);
    assert_eq!(json(&out)["value"], doc);
    expect(kms_on(uri, &["rotate", "doc", "--whole"]), b"", 0);
    let out = expect(kms_on(uri, &["get", "doc", "--json", "--reveal"]), b"", 0);
    assert_eq!(json(&out)["value"].as_str().unwrap().len(), 43);
    expect(kms_on(uri, &["rotate", "missing"]), b"", 3);
    expect(kms_on(uri, &["get", "missing"]), b"", 3);
}

/// Waits until a thread of process `pid` is blocked reading its stdin (Linux x86_64:
/// `/proc/<pid>/task/*/syscall` starts with `0 0x0`, `read(0, …)`).
fn wait_reading_stdin(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reading = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|task| {
                std::fs::read_to_string(task.path().join("syscall"))
                    .is_ok_and(|s| s.starts_with("0 0x0 "))
            });
        if reading {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "kms rotate --stdin never read its stdin"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
