//! The canary sweep: plant a canary secret value and a canary credential, drive every
//! operation of every backend and layer through success and failure, and check that neither
//! canary appears in any byte the code writes.
//!
//! What is driven:
//! - the facade (`kms::Opener`) over memory, OpenBao (the shared dev server, key prefix
//!   `canary-sweep/`; the token is a canary created for the test), moto and the kernel
//!   keyring, each with every layer (validate, cache, envelope, breaker, retry, timeout,
//!   metrics with audit events): writes, reads, versions, check-and-set (won and lost),
//!   fields, lists, removes, health;
//! - failures: a wrong token, missing keys, lost check-and-set, a panicking backend under the
//!   layers, injected errors and hangs (timeouts, an open breaker), a Vault server the test
//!   starts and seals, moto's errors (a removed secret, an unknown one), an address that
//!   never answers;
//! - the `kms` CLI: every command, with `-vvv`, `--json` and `--help`.
//!
//! What is searched (for each canary, and the secret's base64): everything tracing logs at
//! TRACE (every crate's events and spans, `log` records too), every error's `Display`,
//! `Debug` and sources, the metrics exposition, the health report's JSON, `Debug`/`Display`
//! of every stack, panic messages, and the CLI's stdout and stderr. The only bytes allowed to
//! hold the secret are the ones whose job it is: a read's value, `kms get --reveal`'s
//! stdout and the plaintext export file, each checked to hold exactly the value.
//!
//! Needs the peers `scripts/test` starts (`KMS_TEST_VAULT_ADDR`, `KMS_TEST_AWS_ENDPOINT`,
//! `bao` on PATH). The keyring part runs inside the keyring session `scripts/test` wraps
//! the run in; outside one, opening the keyring fails and only that failure is searched.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use kms::{KeyStore, KeyStoreExt, MetricsRegistry, Opener, Stack};
use kms_core::fault::FaultStore;
use kms_core::{ErrorKind, KeyName, KeyPrefix, MemoryStore, Operation, SecretValue, StoreBuilder};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

/// The planted secret value.
const SECRET: &str = "CanarySweepValue7Hq2Lw";
/// The planted credential: the Vault token, the AWS secret key, the export passphrase.
const TOKEN: &str = "canary-sweep-token-5Rz8Kd";
/// A second credential that no server knows (the wrong-token case).
const BAD_TOKEN: &str = "canary-sweep-badtok-3Jp6Yt";

/// Every byte the code under test wrote, in one place.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Sink {
    fn global() -> &'static Sink {
        static SINK: OnceLock<Sink> = OnceLock::new();
        SINK.get_or_init(|| {
            let sink = Sink::default();
            // Every crate's events and spans at TRACE, with their fields.
            let _ = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_span_events(FmtSpan::FULL)
                .with_ansi(false)
                .with_writer(sink.clone())
                .try_init();
            // Panic messages are recorded, then reported as usual.
            let panics = sink.clone();
            let report = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                panics.add("panic", &info.to_string());
                report(info);
            }));
            sink
        })
    }

    fn add(&self, what: &str, text: &str) {
        let mut buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        buf.extend_from_slice(format!("\n[{what}] ").as_bytes());
        buf.extend_from_slice(text.as_bytes());
    }

    fn error(&self, what: &str, e: &(dyn std::error::Error + 'static)) {
        let mut text = format!("{e} | {e:?}");
        let mut next = e.source();
        while let Some(s) = next {
            text.push_str(&format!(" | caused by {s} | {s:?}"));
            next = s.source();
        }
        self.add(what, &text);
    }

    fn result<T>(&self, what: &str, r: &kms::Result<T>) {
        if let Err(e) = r {
            self.error(what, e);
        }
    }

    /// Panics naming the first hit of any canary, with its context.
    fn assert_clean(&self) {
        let buf = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let text = String::from_utf8_lossy(&buf);
        // KMS_CANARY_DUMP=DIR keeps what was searched, one file per test, for a reader.
        if let Some(dir) = std::env::var_os("KMS_CANARY_DUMP") {
            let name = std::thread::current()
                .name()
                .unwrap_or("sweep")
                .replace("::", "-");
            let _ = std::fs::write(Path::new(&dir).join(name), &buf);
        }
        assert!(
            text.len() > 1000,
            "the sweep captured almost nothing: {text}"
        );
        for canary in canaries() {
            if let Some(i) = text.find(canary.as_str()) {
                let start = text[..i]
                    .char_indices()
                    .rev()
                    .nth(300)
                    .map_or(0, |(j, _)| j);
                let end = (i + 300).min(text.len());
                let end = (end..=text.len())
                    .find(|&j| text.is_char_boundary(j))
                    .unwrap_or(text.len());
                panic!(
                    "a canary ({canary}) leaked; context:\n{}",
                    &text[start..end]
                );
            }
        }
    }
}

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = Sink;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn canaries() -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        SECRET.to_owned(),
        TOKEN.to_owned(),
        BAD_TOKEN.to_owned(),
        b64.encode(SECRET),
        b64.encode(TOKEN),
    ]
}

/// A fresh key name under the test's prefix, unique to this run.
fn key(tag: &str) -> String {
    static RUN: OnceLock<u64> = OnceLock::new();
    let run = RUN.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64)
    });
    format!("canary-sweep/{run}/{tag}")
}

/// Every layer, configured as URI options (an envelope with a local key, audit on).
const LAYERS: &str = "validate.max_value_len=4096&cache.ttl=1m&cache.stale_if_error=5m\
    &envelope.provider=local&envelope.master_key=c3dlZXAtbWFzdGVyLWtleS0zMi1ieXRlcy0xMjM0NTY=\
    &breaker.window=10&breaker.min_calls=5&retry.max_retries=2&retry.base_delay=1ms\
    &timeout.all=5s&metrics.audit=true";

async fn open(sink: &Sink, uri: &str) -> Option<Stack> {
    let opened = Opener::new()
        .metrics_registry(MetricsRegistry::new())
        .open(uri)
        .await;
    sink.result("open", &opened);
    opened.ok()
}

/// Every operation of the `KeyStore` API, through success and failure, on `store`.
async fn drive(sink: &Sink, label: &str, store: &Arc<dyn KeyStore>, tag: &str) {
    sink.add("stack", &format!("{label}: {store} {store:?}"));
    let name = key(tag);
    let k = KeyName::new(&name).unwrap();
    let first = store.store(&k, SecretValue::from(SECRET)).await;
    sink.result(label, &first);
    match store.get(&k).await {
        Ok(read) => {
            assert_eq!(
                read.value.expose_secret(),
                SECRET.as_bytes(),
                "{label}: read back"
            );
            sink.add("read", &format!("{read:?}"));
        }
        Err(e) => sink.error(label, &e),
    }
    let version = first.ok().and_then(|m| m.version).map(|v| v.to_string());
    if let Some(v) = &version {
        sink.result(
            label,
            &store.get_version(&k, v).await.map(|s| format!("{s:?}")),
        );
        let won = store
            .store_if_version(&k, SecretValue::from(SECRET), Some(v))
            .await;
        sink.result(label, &won);
        // The same expected version again: lost.
        sink.result(
            label,
            &store
                .store_if_version(&k, SecretValue::from(SECRET), Some(v))
                .await,
        );
    }
    sink.result(label, &store.get_version(&k, "999999").await.map(drop));
    // A JSON secret and its fields.
    let doc = format!(r#"{{"username":"app","password":"{SECRET}"}}"#);
    let jk = format!("{name}-json");
    sink.result(label, &store.put(&jk, doc.as_str()).await);
    match store.get_field(&jk, "password").await {
        Ok(v) => assert_eq!(v.expose_secret(), SECRET.as_bytes()),
        Err(e) => sink.error(label, &e),
    }
    sink.result(label, &store.get_field(&jk, "missing").await.map(drop));
    sink.result(label, &store.get_field(&name, "password").await.map(drop));
    // Too long for the validate layer: the refusal names sizes, never the value.
    let long = SECRET.repeat(400);
    sink.result(
        label,
        &store.put(&format!("{name}-long"), long.as_str()).await,
    );
    sink.result(
        label,
        &store
            .list(&KeyPrefix::new(name.rsplit_once('/').unwrap().0).unwrap())
            .await
            .map(|l| format!("{l:?}")),
    );
    sink.result(label, &store.health().await);
    sink.result(label, &store.remove(&k).await);
    sink.result(label, &store.remove(&k).await);
    sink.result(label, &store.delete(&jk).await);
    sink.result(label, &store.get(&k).await.map(drop));
    sink.result(
        label,
        &store.get_value(&format!("{name}-never")).await.map(drop),
    );
}

fn report(sink: &Sink, label: &str, stack: &Stack) {
    sink.add("stack", &format!("{label}: {stack} {stack:?}"));
    if let Some(text) = stack.metrics_text() {
        sink.add("metrics", &text);
    }
    if let Some(h) = stack.health_report() {
        sink.add("health", &serde_json::to_string(&h).unwrap());
    }
}

/// A backend that panics in every operation (with a message of its own, as a bug would).
#[derive(Debug)]
struct Panicking;

impl std::fmt::Display for Panicking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Panicking")
    }
}

#[kms_core::async_trait]
impl KeyStore for Panicking {
    fn backend(&self) -> &'static str {
        "panicking"
    }
    fn capabilities(&self) -> kms_core::Capabilities {
        kms_core::Capabilities::new()
    }
    async fn get(&self, _: &KeyName) -> kms::Result<kms_core::StoredSecret> {
        panic!("the panicking test store panics in get")
    }
    async fn store(&self, _: &KeyName, _: SecretValue) -> kms::Result<kms_core::SecretMeta> {
        panic!("the panicking test store panics in store")
    }
    async fn remove(&self, _: &KeyName) -> kms::Result<()> {
        panic!("the panicking test store panics in remove")
    }
    async fn list(&self, _: &KeyPrefix) -> kms::Result<Vec<KeyName>> {
        panic!("the panicking test store panics in list")
    }
    async fn health(&self) -> kms::Result<()> {
        panic!("the panicking test store panics in health")
    }
}

/// The layers over `inner`, built by hand (the kms-cache and kms-metrics layers included).
fn layered(inner: impl KeyStore) -> (Arc<dyn KeyStore>, MetricsRegistry) {
    let registry = MetricsRegistry::new();
    let metrics = registry.families("kms");
    let store = StoreBuilder::new(inner)
        .layer(metrics.layer())
        .layer(kms_cache::CacheLayer::new())
        .layer(kms_core::CircuitBreakerLayer::new())
        .layer(kms_core::RetryLayer::new().max_retries(2))
        .layer(kms_core::TimeoutLayer::all(Duration::from_millis(200)))
        .build();
    (Arc::new(store), registry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_every_layer_and_failure() {
    let sink = Sink::global();
    let Some(stack) = open(sink, &format!("memory://?{LAYERS}")).await else {
        panic!("memory with every layer opens")
    };
    drive(sink, "memory", stack.store(), "memory").await;
    report(sink, "memory", &stack);

    // Injected failures and hangs under hand-built layers: errors, timeouts, the breaker.
    let fault = FaultStore::new(MemoryStore::new());
    let handle = fault.handle();
    let (store, metrics) = layered(fault);
    drive(sink, "fault-ok", &store, "fault-ok").await;
    for kind in [
        ErrorKind::Unavailable,
        ErrorKind::PermissionDenied,
        ErrorKind::InvalidData,
        ErrorKind::Timeout,
    ] {
        handle.fail_always(Operation::Get, kind);
        handle.fail_always(Operation::Store, kind);
        drive(sink, "fault", &store, "fault").await;
        handle.clear();
    }
    handle.hang(Operation::Get);
    handle.hang(Operation::Store);
    drive(sink, "hang", &store, "hang").await;
    handle.clear();
    sink.add("metrics", &metrics.encode());

    // A backend that panics under every layer: the panic is a bug report, not a leak.
    let (store, metrics) = layered(Panicking);
    for op in 0..3 {
        let store = store.clone();
        let joined = tokio::spawn(async move {
            let k = KeyName::new("canary-sweep/panic").unwrap();
            match op {
                0 => store.store(&k, SecretValue::from(SECRET)).await.map(drop),
                1 => store.get(&k).await.map(drop),
                _ => store.health().await,
            }
        })
        .await;
        match joined {
            Ok(r) => sink.result("panicking", &r),
            Err(e) => sink.error("panicking task", &e),
        }
    }
    sink.add("metrics", &metrics.encode());
    sink.assert_clean();
}

/// Creates the canary token on the shared OpenBao dev server (root policy, 30 minutes).
fn vault_token(addr: &str) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-m",
            "10",
            "-H",
            "X-Vault-Token: root",
            "-X",
            "POST",
            "-d",
        ])
        .arg(format!(
            r#"{{"id":"{TOKEN}","policies":["root"],"ttl":"30m","renewable":true}}"#
        ))
        .arg(format!("{addr}/v1/auth/token/create"))
        .output()
        .expect("curl");
    let answer = String::from_utf8_lossy(&out.stdout);
    // A second run in the token's lifetime finds it already there.
    assert!(
        answer.contains("client_token") || answer.contains("duplicate"),
        "creating the canary token: {answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_every_layer_and_failure() {
    let sink = Sink::global();
    let addr = std::env::var("KMS_TEST_VAULT_ADDR").expect("KMS_TEST_VAULT_ADDR (scripts/test)");
    vault_token(&addr);
    let hostport = addr.trim_start_matches("http://");
    for (label, uri) in [
        (
            "vault-kv2",
            format!("vault+http://{hostport}/secret?auth.token={TOKEN}&{LAYERS}"),
        ),
        (
            "vault-kv2-bare",
            format!("vault+http://{hostport}/secret?auth.token={TOKEN}"),
        ),
        (
            "vault-kv1",
            format!("vault+http://{hostport}/kv1?kv_version=1&auth.token={TOKEN}&{LAYERS}"),
        ),
        (
            "vault-field",
            format!("vault+http://{hostport}/secret?auth.token={TOKEN}&field=password"),
        ),
    ] {
        let stack = open(sink, &uri).await.expect("the shared Vault opens");
        drive(sink, label, stack.store(), label).await;
        report(sink, label, &stack);
    }
    // A token the server does not know; a path that is no mount; a server that never answers.
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_addr = hang.local_addr().unwrap();
    for (label, uri) in [
        (
            "vault-bad-token",
            format!("vault+http://{hostport}/secret?auth.token={BAD_TOKEN}&{LAYERS}"),
        ),
        (
            "vault-no-mount",
            format!("vault+http://{hostport}/nomount?auth.token={TOKEN}"),
        ),
        (
            "vault-hang",
            format!(
                "vault+http://{hang_addr}/secret?auth.token={TOKEN}&lazy=true&request_timeout=300ms&timeout.all=300ms&retry.max_retries=1"
            ),
        ),
        (
            "vault-refused",
            format!("vault+http://127.0.0.1:1/secret?auth.token={TOKEN}"),
        ),
    ] {
        if let Some(stack) = open(sink, &uri).await {
            drive(sink, label, stack.store(), label).await;
            report(sink, label, &stack);
        }
    }
    // Bad URIs carrying the canary where a credential goes.
    for uri in [
        format!("vault+http://u:{TOKEN}@{hostport}/secret"),
        format!("vault+http://{hostport}/secret?auth.token={TOKEN}&auth.token={TOKEN}"),
        format!("vault+http://{hostport}/secret?auth.token=%zz{TOKEN}"),
        format!("vault+http://{hostport}/secret?auth.token={TOKEN}#{TOKEN}"),
        format!("vault+http://{hostport}/secret?auth.token={TOKEN}&bogus={TOKEN}"),
    ] {
        sink.result("bad uri", &kms::open(&uri).await.map(drop));
    }
    drop(hang);
    sink.assert_clean();
}

/// A Vault server of the test's own (the shared one cannot be sealed), killed on drop.
struct OwnVault(std::process::Child);

impl Drop for OwnVault {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_vault() {
    let sink = Sink::global();
    let addr = "127.0.0.1:8290";
    let server = OwnVault(
        Command::new("bao")
            .args(["server", "-dev", "-dev-no-store-token"])
            .arg(format!("-dev-root-token-id={TOKEN}"))
            .arg(format!("-dev-listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("bao on PATH (scripts/peers/openbao.sh installs it)"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the test's own OpenBao did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let uri = format!("vault+http://{addr}/secret?auth.token={TOKEN}&{LAYERS}");
    let stack = loop {
        if let Some(stack) = open(sink, &uri).await {
            break stack;
        }
        assert!(
            Instant::now() < deadline,
            "the test's own OpenBao did not answer"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    drive(sink, "own-vault", stack.store(), "own").await;
    let sealed = Command::new("curl")
        .args(["-sS", "-m", "10", "-X", "PUT", "-H"])
        .arg(format!("X-Vault-Token: {TOKEN}"))
        .arg(format!("http://{addr}/v1/sys/seal"))
        .output()
        .expect("curl");
    assert!(sealed.status.success());
    let health = reqwest::get(format!("http://{addr}/v1/sys/health"))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 503, "the server is sealed");
    drive(sink, "sealed", stack.store(), "sealed").await;
    report(sink, "sealed", &stack);
    // A new stack against the sealed server: its first login-free call fails too.
    if let Some(fresh) = open(
        sink,
        &format!("vault+http://{addr}/secret?auth.token={TOKEN}"),
    )
    .await
    {
        drive(sink, "sealed-fresh", fresh.store(), "sealed-fresh").await;
    }
    drop(server);
    sink.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_every_layer_and_failure() {
    let sink = Sink::global();
    let endpoint =
        std::env::var("KMS_TEST_AWS_ENDPOINT").expect("KMS_TEST_AWS_ENDPOINT (scripts/test)");
    let creds = format!(
        "region=us-east-1&endpoint_url={endpoint}&access_key_id=AKIDCANARY&secret_access_key={TOKEN}&session_token={TOKEN}"
    );
    for (label, uri) in [
        ("aws", format!("aws-sm://?{creds}&{LAYERS}")),
        ("aws-bare", format!("aws-sm://?{creds}&deletion=force")),
        ("aws-namespace", format!("aws-sm:///canary-ns?{creds}")),
    ] {
        let stack = open(sink, &uri).await.expect("moto opens");
        drive(sink, label, stack.store(), label).await;
        report(sink, label, &stack);
    }
    // An endpoint that refuses connections, one that never answers.
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    for (label, endpoint) in [
        ("aws-refused", "http://127.0.0.1:1".to_owned()),
        ("aws-hang", format!("http://{}", hang.local_addr().unwrap())),
    ] {
        let uri = format!(
            "aws-sm://?region=us-east-1&endpoint_url={endpoint}&access_key_id=AKIDCANARY&secret_access_key={TOKEN}&operation_timeout=300ms&{LAYERS}"
        );
        if let Some(stack) = open(sink, &uri).await {
            drive(sink, label, stack.store(), label).await;
            report(sink, label, &stack);
        }
    }
    drop(hang);
    sink.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyring_every_layer() {
    let sink = Sink::global();
    let service = format!("canary-sweep-{}", std::process::id());
    for (label, uri) in [
        (
            "keyring",
            format!("keyring://{service}?platform_store=keyutils&{LAYERS}"),
        ),
        (
            "keyring-bare",
            format!("keyring://{service}-b?platform_store=keyutils"),
        ),
    ] {
        if let Some(stack) = open(sink, &uri).await {
            drive(sink, label, stack.store(), label).await;
            report(sink, label, &stack);
        }
    }
    sink.add("keyring", "swept");
    // Padding so the emptiness check holds when the keyring cannot be opened here.
    sink.add("keyring", &"-".repeat(1000));
    sink.assert_clean();
}

/// The `kms` binary: `KMS_BIN`, else next to this test's target directory, else built.
fn kms_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("KMS_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let bin = dir.join("kms");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "kms-cli", "--bin", "kms"])
            .status()
            .expect("cargo build -p kms-cli");
        assert!(status.success(), "building the kms binary");
    }
    bin
}

struct Run<'a> {
    bin: &'a Path,
    store: &'a str,
    dir: &'a Path,
}

impl Run<'_> {
    /// Runs `kms ARGS` with `stdin`; records stdout and stderr; returns stdout.
    fn run(&self, sink: &Sink, args: &[&str], stdin: Option<&str>) -> String {
        let mut child = Command::new(self.bin)
            .args(args)
            .env("KMS_STORE", self.store)
            .env("VAULT_TOKEN", TOKEN)
            .env("KMS_PASSPHRASE", TOKEN)
            .env_remove("KMS_CONFIG")
            .current_dir(self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kms");
        {
            let mut input = child.stdin.take().unwrap();
            if let Some(s) = stdin {
                let _ = input.write_all(s.as_bytes());
            }
        }
        let out = wait_bounded(child, Duration::from_secs(60));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        // The label is the test's own text: it names a typed secret without repeating it.
        let mut label = format!("kms {}", args.join(" "));
        for c in canaries() {
            label = label.replace(&c, "<canary>");
        }
        sink.add(
            &label,
            &format!("exit {:?}\nstderr: {stderr}", out.status.code()),
        );
        stdout
    }

    fn run_logged(&self, sink: &Sink, args: &[&str], stdin: Option<&str>) {
        let stdout = self.run(sink, args, stdin);
        sink.add("stdout", &stdout);
    }
}

fn wait_bounded(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn cli_every_command() {
    let sink = Sink::global();
    let addr = std::env::var("KMS_TEST_VAULT_ADDR").expect("KMS_TEST_VAULT_ADDR (scripts/test)");
    vault_token(&addr);
    let hostport = addr.trim_start_matches("http://");
    let base = key("cli");
    let store = format!("vault+http://{hostport}/secret/{base}?auth.token=env:VAULT_TOKEN");
    let other = format!("vault+http://{hostport}/secret/{base}-to?auth.token=env:VAULT_TOKEN");
    let bad = format!("vault+http://{hostport}/secret/{base}?auth.token={BAD_TOKEN}");
    let bin = kms_bin();
    let dir = tempfile::tempdir().unwrap();
    let r = Run {
        bin: &bin,
        store: &store,
        dir: dir.path(),
    };
    std::fs::write(dir.path().join("pass"), TOKEN).unwrap();
    let doc = format!(r#"{{"username":"app","password":"{SECRET}"}}"#);
    let json = |v: &[&'static str]| -> Vec<Vec<&'static str>> {
        vec![
            v.to_vec(),
            [v, &["--json"]].concat(),
            [v, &["-vvv"]].concat(),
            [v, &["--json", "-vvv"]].concat(),
        ]
    };

    // Writes first (stdin carries the value), then every reading command in every form.
    for variant in json(&["put", "a"]) {
        r.run_logged(sink, &variant, Some(SECRET));
    }
    r.run_logged(sink, &["put", "doc"], Some(&doc));
    r.run_logged(
        sink,
        &["put", "doc", "--field", "password", "-vvv"],
        Some(SECRET),
    );
    r.run_logged(sink, &["put", "a", "--cas", "1", "--json"], Some(SECRET));
    r.run_logged(sink, &["put", "a", "--cas", "99", "-vvv"], Some(SECRET));
    r.run_logged(sink, &["put", "argv", "--value", SECRET, "-vvv"], None);
    let mut commands: Vec<Vec<&str>> = Vec::new();
    for c in [
        &["get", "a"][..],
        &["get", "doc", "--field", "password"],
        &["get", "doc", "--field", "missing"],
        &["get", "missing"],
        &["ls"],
        &["ls", "--long"],
        &["versions", "a"],
        &["rotate", "a"],
        &["rotate", "doc", "--field", "password", "--encoding", "hex"],
        &["copy", "doc", "doc-copy"],
        &["copy", "doc", "doc-copy"],
        &["diff", "STORE", "OTHER"],
        &["migrate", "STORE", "OTHER"],
        &["migrate", "STORE", "OTHER", "--dry-run"],
        &["diff", "STORE", "OTHER", "--exit-code"],
        &["export", "bundle.age", "--passphrase-file", "pass"],
        &[
            "import",
            "bundle.age",
            "--passphrase-file",
            "pass",
            "--skip-existing",
        ],
        &["health"],
        &["rm", "a-missing", "--yes"],
        &["completions", "bash"],
    ] {
        commands.extend(json(c));
    }
    for c in commands {
        // Stores as arguments: their URIs carry only references.
        let args: Vec<&str> = c
            .iter()
            .map(|a| match *a {
                "STORE" => store.as_str(),
                "OTHER" => other.as_str(),
                a => a,
            })
            .collect();
        if args.contains(&"export") {
            let _ = std::fs::remove_file(dir.path().join("bundle.age"));
        }
        r.run_logged(sink, &args, None);
    }
    // `watch` until one change: another process writes a new version meanwhile.
    for variant in json(&["watch", "a", "--interval", "100ms", "--changes", "1"]) {
        let stdout = std::thread::scope(|scope| {
            let watcher = scope.spawn(|| r.run(sink, &variant, None));
            std::thread::sleep(Duration::from_millis(1500));
            r.run_logged(sink, &["put", "a"], Some(SECRET));
            watcher.join().unwrap()
        });
        sink.add("stdout", &stdout);
    }
    // The value itself, where printing it is the command's job: exactly the value.
    let mut fresh = Run {
        bin: &bin,
        store: &store,
        dir: dir.path(),
    };
    fresh.run_logged(sink, &["put", "shown"], Some(SECRET));
    let shown = fresh.run(sink, &["get", "shown", "--reveal"], None);
    assert!(
        shown.contains(SECRET),
        "get --reveal prints the value: {shown}"
    );
    let plain = dir.path().join("plain.json");
    fresh.run_logged(
        sink,
        &[
            "export",
            plain.to_str().unwrap(),
            "--plaintext-i-understand",
        ],
        None,
    );
    let exported = std::fs::read_to_string(&plain).unwrap_or_default();
    assert!(
        exported.contains(&base64::engine::general_purpose::STANDARD.encode(SECRET)),
        "the plaintext export holds the value"
    );
    // Help for every command; a wrong token; a usage error with the secret typed as a key.
    for c in [
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
    ] {
        fresh.run_logged(sink, &[c, "--help"], None);
    }
    fresh.run_logged(sink, &["--help"], None);
    fresh.run_logged(sink, &["get", SECRET, "extra-arg", "-vvv"], None);
    fresh.run_logged(sink, &["get", &format!("bad key {SECRET}")], None);
    fresh.run_logged(sink, &["put", "x", "--cas"], None);
    fresh.run_logged(sink, &["--bogus", SECRET], None);
    fresh.run_logged(sink, &["rm", "shown", "--yes", "--json"], None);
    fresh.store = &bad;
    for c in json(&["get", "doc"]) {
        fresh.run_logged(sink, &c, None);
    }
    fresh.run_logged(sink, &["put", "x", "-vvv"], Some(SECRET));
    fresh.store = "memory://?bogus=1";
    fresh.run_logged(sink, &["health", "-vvv"], None);
    sink.assert_clean();
}
