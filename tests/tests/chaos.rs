//! Chaos: the full stack (cache with stale-if-error → breaker → retry → timeout
//! 500 ms → Vault) over a real OpenBao server that this test starts on its own free port
//! (never the shared one: it freezes and seals it), reached through a local TCP proxy that can
//! stop answering. Eight readers with a 2 s deadline of their own read cached-then-expired keys
//! while the server is frozen, then sealed, and come back. Asserted: no caller error while a
//! stale value exists, the breaker open within a few attempt timeouts, no resurrected value,
//! recovery after the server returns within the breaker's open delay and one load. About 40 s.
//!
//! The writer variant (`a_writer_through_seal_kill_and_freeze_never_costs_a_reader_a_servable_value`)
//! runs the whole stack a service runs (metrics → cache reading the backend monitor's health
//! signal → breaker → retry → monitor → timeout → Vault) over 200 keys, with 8 readers and
//! one writer every 200 ms, through a sealed Vault, a killed proxy (connections refused) and a
//! frozen one: writes may fail, reads of a key with a value the cache may serve may not.
//!
//! Needs `bao` on `PATH` (scripts/peers/openbao.sh installs it).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use kms_backend_vault::{VaultAuth, VaultClient, VaultStore};
use kms_cache::CacheLayer;
use kms_core::{
    CircuitBreakerHandle, CircuitBreakerLayer, CircuitState, ErrorKind, KeyName, KeyStore,
    KeyStoreExt, RetryLayer, StoreBuilder, TimeoutLayer,
};
use kms_metrics::KmsMetrics;
use kms_metrics::prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

const TTL: Duration = Duration::from_secs(2);
const ATTEMPT: Duration = Duration::from_millis(500);
const OPEN_DELAY: Duration = Duration::from_secs(3);
const READERS: usize = 8;

/// An OpenBao dev server of this test's own, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    unseal_key: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port whose successor is free too (the dev server's cluster listener takes it).
fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair");
}

fn bao(server: &Server, args: &[&str]) {
    let out = Command::new("bao")
        .args(args)
        .env("BAO_ADDR", format!("http://{}", server.addr))
        .env("BAO_TOKEN", "root")
        .output()
        .expect("`bao` is on PATH (scripts/peers/openbao.sh)");
    assert!(
        out.status.success(),
        "bao {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn start_server() -> Server {
    let port = free_port_pair();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut child = Command::new("bao")
        .args([
            "server",
            "-dev",
            "-dev-root-token-id=root",
            &format!("-dev-listen-address={addr}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("`bao` is on PATH (scripts/peers/openbao.sh installs it)");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        // Keep draining, so the server never blocks on a full pipe.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !sent && let Some(key) = line.trim().strip_prefix("Unseal Key: ") {
                let _ = tx.send(key.trim().to_owned());
                sent = true;
            }
        }
    });
    let unseal_key = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the dev server printed no unseal key within 30 s");
    let server = Server {
        child,
        addr,
        unseal_key,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(client) = client(addr).await
            && client_healthy(&client).await
        {
            break;
        }
        assert!(Instant::now() < deadline, "the dev server did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server
}

async fn client(addr: SocketAddr) -> kms_core::Result<VaultClient> {
    VaultClient::builder(format!("http://{addr}"))
        .auth(VaultAuth::token("root"))
        .timeout(Duration::from_secs(30))
        .build()
        .await
}

async fn client_healthy(client: &VaultClient) -> bool {
    VaultStore::builder(client.clone())
        .mount("secret")
        .build()
        .expect("a valid store configuration")
        .health()
        .await
        .is_ok()
}

/// A TCP proxy that forwards to `upstream` until frozen; frozen, it accepts and reads but
/// forwards nothing (a server that stopped answering, like one under SIGSTOP).
async fn start_proxy(upstream: SocketAddr, frozen: Arc<AtomicBool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let frozen = frozen.clone();
            tokio::spawn(async move {
                let Ok(outbound) = TcpStream::connect(upstream).await else {
                    return;
                };
                let (ri, wi) = inbound.into_split();
                let (ro, wo) = outbound.into_split();
                tokio::spawn(pipe(ri, wo, frozen.clone()));
                pipe(ro, wi, frozen).await;
            });
        }
    });
    addr
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// What the readers saw in one phase.
#[derive(Debug, Default)]
struct Seen {
    reads: u64,
    stale_or_fresh: u64,
    /// Errors while the key had a stale value to serve.
    errors: u64,
    /// The slowest read.
    slowest: Duration,
}

/// `READERS` readers over `keys`, each read with a 2 s deadline, for `how_long`; every value
/// read must be one of `allowed(key)`.
async fn read_for(
    store: &Arc<dyn KeyStore>,
    keys: &[KeyName],
    how_long: Duration,
    allowed: impl Fn(&KeyName, &str) -> bool + Send + Sync + 'static,
) -> Seen {
    let allowed = Arc::new(allowed);
    let (reads, ok, errors, slowest) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let end = Instant::now() + how_long;
    let tasks: Vec<_> = (0..READERS)
        .map(|r| {
            let (store, keys, allowed) = (store.clone(), keys.to_vec(), allowed.clone());
            let (reads, ok, errors, slowest) =
                (reads.clone(), ok.clone(), errors.clone(), slowest.clone());
            tokio::spawn(async move {
                let mut i = r;
                while Instant::now() < end {
                    let k = &keys[i % keys.len()];
                    i += 1;
                    let t = Instant::now();
                    let got = tokio::time::timeout(Duration::from_secs(2), store.get(k)).await;
                    slowest.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                    reads.fetch_add(1, Ordering::Relaxed);
                    match got {
                        Ok(Ok(secret)) => {
                            let v = secret.value.expose_str().unwrap().to_owned();
                            assert!(allowed(k, &v), "{k}: read {v:?}, an older value");
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    Seen {
        reads: reads.load(Ordering::Relaxed),
        stale_or_fresh: ok.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        slowest: Duration::from_micros(slowest.load(Ordering::Relaxed)),
    }
}

/// How long after `since` the breaker is seen open, polling every 10 ms for at most `within`.
async fn opens_within(breaker: &CircuitBreakerHandle, within: Duration) -> Option<Duration> {
    let since = Instant::now();
    while since.elapsed() < within {
        if breaker.state() == CircuitState::Open {
            return Some(since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// Reads `key` until it answers `want` (a fresh read), at most `within`; returns how long.
async fn fresh_within(
    store: &Arc<dyn KeyStore>,
    key: &KeyName,
    want: &str,
    within: Duration,
) -> Option<Duration> {
    let since = Instant::now();
    while since.elapsed() < within {
        if let Ok(Ok(v)) = tokio::time::timeout(Duration::from_secs(2), store.get(key)).await
            && v.value.expose_str().unwrap() == want
        {
            return Some(since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outages_never_reach_callers_while_a_good_value_is_cached() {
    let server = start_server().await;
    let frozen = Arc::new(AtomicBool::new(false));
    let proxy = start_proxy(server.addr, frozen.clone()).await;
    let prefix = kms_core::conformance::unique_name("chaos");
    let direct = VaultStore::builder(client(server.addr).await.unwrap())
        .mount("secret")
        .prefix(&prefix)
        .build()
        .unwrap();
    let breaker = CircuitBreakerLayer::new()
        .window(8)
        .min_calls(4)
        .open_delay(OPEN_DELAY)
        .trial_timeout(Duration::from_secs(3));
    let state = breaker.handle();
    let cache = CacheLayer::new()
        .ttl(TTL)
        .jitter(0.0)
        .stale_if_error(Duration::from_secs(600));
    let store = StoreBuilder::new(
        VaultStore::builder(client(proxy).await.unwrap())
            .mount("secret")
            .prefix(&prefix)
            .build()
            .unwrap(),
    )
    .layer(cache)
    .resilience(breaker, RetryLayer::new(), TimeoutLayer::all(ATTEMPT))
    .try_build()
    .unwrap();

    let keys: Vec<KeyName> = (0..READERS)
        .map(|i| KeyName::new(format!("k{i}")).unwrap())
        .collect();
    for k in &keys {
        store
            .put(k.as_str(), format!("{k}@1").as_str())
            .await
            .unwrap();
        store.get(k).await.unwrap();
    }
    let r = KeyName::new("r").unwrap();
    store.put("r", "r@1").await.unwrap();
    store.get(&r).await.unwrap();

    // Scenario 4, first half: deleted behind the cache's back; once the cache has seen
    // not-found, the old value must never come back.
    direct.remove(&r).await.unwrap();
    tokio::time::sleep(TTL).await;
    assert_eq!(store.get(&r).await.unwrap_err().kind(), ErrorKind::NotFound);

    // Frozen (scenarios 1, 2, 5): every key expired, the server stops answering.
    frozen.store(true, Ordering::SeqCst);
    let readers = {
        let (store, keys) = (store.clone(), keys.clone());
        tokio::spawn(async move {
            read_for(&store, &keys, Duration::from_secs(6), |k, v| {
                v == format!("{k}@1") || v == format!("{k}@2")
            })
            .await
        })
    };
    // One load per key: 4 attempts of 500 ms and the backoff between them (≤ 850 ms).
    let opened = opens_within(&state, ATTEMPT * 8).await;
    let seen = readers.await.unwrap();
    assert_eq!(seen.reads, seen.stale_or_fresh + seen.errors);
    assert_eq!(
        seen.errors, 0,
        "caller errors while frozen with stale values: {seen:?}"
    );
    assert!(seen.stale_or_fresh > 100, "{seen:?}");
    let opened = opened.expect("the breaker did not open within 8 attempt timeouts");
    eprintln!("frozen: breaker open after {opened:?}; {seen:?}");
    assert!(
        seen.slowest < Duration::from_millis(1500),
        "a stale serve waited {:?}",
        seen.slowest
    );
    // A write refused by the open breaker leaves the cache as it was (scenario 3).
    assert_eq!(
        store.put("k0", "refused").await.unwrap_err().kind(),
        ErrorKind::CircuitOpen
    );
    assert_eq!(
        store.get_value("k0").await.unwrap().expose_str().unwrap(),
        "k0@1"
    );

    // Back: a value written meanwhile (directly) is read within the open delay and one load.
    direct.store(&keys[1], "k1@2".into()).await.unwrap();
    frozen.store(false, Ordering::SeqCst);
    let fresh = fresh_within(
        &store,
        &keys[1],
        "k1@2",
        OPEN_DELAY + Duration::from_secs(5),
    )
    .await
    .expect("no fresh read after the server came back");
    eprintln!("unfrozen: fresh after {fresh:?}");
    assert!(
        fresh <= OPEN_DELAY + ATTEMPT * 4 + Duration::from_secs(1),
        "{fresh:?}"
    );

    // Sealed (scenario 1 with 503s, scenario 4 second half).
    for k in &keys {
        store.get(k).await.unwrap();
    }
    tokio::time::sleep(TTL).await;
    bao(&server, &["operator", "seal"]);
    let readers = {
        let (store, keys) = (store.clone(), keys.clone());
        tokio::spawn(async move {
            read_for(&store, &keys, Duration::from_secs(4), |k, v| {
                v == format!("{k}@1") || v == format!("{k}@2")
            })
            .await
        })
    };
    let opened = opens_within(&state, ATTEMPT * 8).await;
    let seen = readers.await.unwrap();
    assert_eq!(
        seen.errors, 0,
        "caller errors while sealed with stale values: {seen:?}"
    );
    let opened = opened.expect("the breaker did not open within 8 attempt timeouts");
    eprintln!("sealed: breaker open after {opened:?}; {seen:?}");
    if let Ok(v) = store.get(&r).await {
        panic!("a deleted secret came back: {:?}", v.value.expose_str());
    }

    bao(&server, &["operator", "unseal", &server.unseal_key]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = direct.store(&keys[2], "k2@2".into()).await {
        assert!(
            Instant::now() < deadline,
            "the server did not come back after unseal: {e}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fresh = fresh_within(
        &store,
        &keys[2],
        "k2@2",
        OPEN_DELAY + Duration::from_secs(5),
    )
    .await
    .expect("no fresh read after unseal");
    eprintln!("unsealed: fresh after {fresh:?}");
    assert!(
        fresh <= OPEN_DELAY + ATTEMPT * 4 + Duration::from_secs(1),
        "{fresh:?}"
    );
    drop(server);
}

/// A TCP proxy that can also be killed (its port closed, so connections are refused before a
/// request is sent, and every open connection dropped) and revived on the same port.
struct KillableProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    frozen: Arc<AtomicBool>,
    /// Bumped on every kill: open connections end when it changes.
    kills: Arc<watch::Sender<u64>>,
    accept: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl KillableProxy {
    async fn start(upstream: SocketAddr) -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Arc::new(Self {
            addr: listener.local_addr().unwrap(),
            upstream,
            frozen: Arc::new(AtomicBool::new(false)),
            kills: Arc::new(watch::channel(0).0),
            accept: std::sync::Mutex::new(None),
        });
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let (upstream, frozen, kills) = (self.upstream, self.frozen.clone(), self.kills.clone());
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let (frozen, mut killed) = (frozen.clone(), kills.subscribe());
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (ri, wi) = inbound.into_split();
                    let (ro, wo) = outbound.into_split();
                    let forward = async {
                        tokio::join!(pipe(ri, wo, frozen.clone()), pipe(ro, wi, frozen));
                    };
                    // Killed: both sockets dropped, mid-request or not.
                    tokio::select! {
                        () = forward => {}
                        _ = killed.changed() => {}
                    }
                });
            }
        });
        *self.accept.lock().unwrap() = Some(task);
    }

    /// Closes the port (connections refused) and drops every open connection.
    async fn kill(&self) {
        if let Some(task) = self.accept.lock().unwrap().take() {
            task.abort();
        }
        self.kills.send_modify(|k| *k += 1);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    /// Listens on the same port again.
    async fn revive(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => return self.serve(listener),
                Err(e) => {
                    assert!(Instant::now() < deadline, "rebind {}: {e}", self.addr);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// What the test knows of one key, to tell whether the cache had a value it may serve.
#[derive(Default)]
struct KeyState {
    /// The highest version written or attempted (a failed write may have landed).
    attempted: u32,
    /// A write of the key in flight since then.
    writing_since: Option<Instant>,
    /// When the last write of the key ended.
    last_write_end: Option<Instant>,
    /// From when the cache may hold the key's value again after the last write that may have
    /// removed it: the end of a write that succeeded (invalidated), or, for a write whose
    /// outcome is unknown, the end of the cache's mark (its load timeout) plus a margin.
    removed_until: Option<Instant>,
    /// The end of a successful read that started after `removed_until`: from then on the
    /// cache held a value for the key, and still does (nothing but a write removes it here).
    servable_since: Option<Instant>,
}

/// Per-phase counts.
#[derive(Debug, Default, Clone)]
struct PhaseCounts {
    reads: u64,
    ok: u64,
    /// Errors while the cache had a value it may serve: must stay 0.
    violations: u64,
    /// Errors of keys without one (written just before, an unknown outcome, never read yet).
    excused: u64,
    /// Successful reads of a key whose last write was refused in a way that proves it was
    /// not applied: the fallback the refusal kept.
    kept_after_refusal: u64,
    writes_ok: u64,
    /// Writes whose failure proves nothing was applied.
    writes_refused: u64,
    /// Writes whose outcome is unknown.
    writes_unknown: u64,
    slowest_ok_read: Duration,
}

const PHASES: [&str; 8] = [
    "normal", "sealed", "unsealed", "killed", "revived", "frozen", "unfrozen", "done",
];

struct Shared {
    keys: Vec<KeyName>,
    state: Vec<std::sync::Mutex<KeyState>>,
    /// The last write of each key was refused and proved not applied.
    refused: Vec<AtomicBool>,
    phase: std::sync::atomic::AtomicUsize,
    counts: std::sync::Mutex<Vec<PhaseCounts>>,
    violations: std::sync::Mutex<Vec<String>>,
}

impl Shared {
    fn count(&self, change: impl FnOnce(&mut PhaseCounts)) {
        let phase = self.phase.load(Ordering::SeqCst);
        change(&mut self.counts.lock().unwrap()[phase]);
    }
}

const KEYS: usize = 200;
const WRITER_LOAD_TIMEOUT: Duration = Duration::from_secs(4);

async fn reader(store: Arc<dyn KeyStore>, shared: Arc<Shared>, first: usize) {
    let mut i = first;
    while shared.phase.load(Ordering::SeqCst) < PHASES.len() - 1 {
        let k = i % KEYS;
        i += 7;
        let t0 = Instant::now();
        let got = tokio::time::timeout(Duration::from_secs(2), store.get(&shared.keys[k])).await;
        let got = match got {
            Ok(Ok(secret)) => Ok(secret.value.expose_str().unwrap().to_owned()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within 2 s".to_owned()),
        };
        record_read(&shared, k, t0, Instant::now(), got);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Checks and counts one read of key `k` made from `t0` to `t1`.
fn record_read(shared: &Shared, k: usize, t0: Instant, t1: Instant, got: Result<String, String>) {
    let key = &shared.keys[k];
    let mut state = shared.state[k].lock().unwrap();
    match got {
        Ok(v) => {
            let version: u32 = v
                .strip_prefix(&format!("{key}@"))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{key}: read {v:?}"));
            assert!(
                version <= state.attempted,
                "{key}: read version {version}, never written"
            );
            if state.removed_until.is_none_or(|r| t0 > r) && state.servable_since.is_none() {
                state.servable_since = Some(t1);
            }
            drop(state);
            let kept = shared.refused[k].load(Ordering::SeqCst);
            shared.count(|c| {
                c.reads += 1;
                c.ok += 1;
                c.kept_after_refusal += u64::from(kept);
                c.slowest_ok_read = c.slowest_ok_read.max(t1 - t0);
            });
        }
        Err(why) => {
            let servable = state.servable_since.is_some_and(|s| s < t0);
            let writing =
                state.writing_since.is_some() || state.last_write_end.is_some_and(|end| end >= t0);
            drop(state);
            if servable && !writing {
                let phase = PHASES[shared.phase.load(Ordering::SeqCst)];
                shared
                    .violations
                    .lock()
                    .unwrap()
                    .push(format!("{phase}: {key}: {why}"));
                shared.count(|c| {
                    c.reads += 1;
                    c.violations += 1;
                });
            } else {
                shared.count(|c| {
                    c.reads += 1;
                    c.excused += 1;
                });
            }
        }
    }
}

async fn writer(store: Arc<dyn KeyStore>, shared: Arc<Shared>) {
    let mut n: u32 = 0;
    while shared.phase.load(Ordering::SeqCst) < PHASES.len() - 1 {
        let k = n as usize % KEYS;
        n += 1;
        let version = 2 + n / KEYS as u32;
        {
            let mut state = shared.state[k].lock().unwrap();
            state.attempted = state.attempted.max(version);
            state.writing_since = Some(Instant::now());
        }
        let value = format!("{}@{version}", shared.keys[k]);
        let result = store.put(shared.keys[k].as_str(), value.as_str()).await;
        let end = Instant::now();
        {
            let mut state = shared.state[k].lock().unwrap();
            state.writing_since = None;
            state.last_write_end = Some(end);
            let removed = match &result {
                Ok(_) => Some(end),
                Err(e) if e.proves_not_applied() => None,
                Err(_) => Some(end + WRITER_LOAD_TIMEOUT + Duration::from_millis(500)),
            };
            if let Some(until) = removed {
                state.removed_until = Some(state.removed_until.map_or(until, |r| r.max(until)));
                state.servable_since = None;
            }
        }
        shared.refused[k].store(
            result
                .as_ref()
                .is_err_and(kms_core::Error::proves_not_applied),
            Ordering::SeqCst,
        );
        shared.count(|c| match &result {
            Ok(_) => c.writes_ok += 1,
            Err(e) if e.proves_not_applied() => c.writes_refused += 1,
            Err(_) => c.writes_unknown += 1,
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_writer_through_seal_kill_and_freeze_never_costs_a_reader_a_servable_value() {
    let server = start_server().await;
    let proxy = KillableProxy::start(server.addr).await;
    let prefix = kms_core::conformance::unique_name("chaos-writer");
    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let breaker = CircuitBreakerLayer::new()
        .window(8)
        .min_calls(4)
        .open_delay(OPEN_DELAY)
        .trial_timeout(Duration::from_secs(3));
    let monitor = metrics
        .backend_monitor()
        .circuit_breaker(&breaker.handle())
        .probe_timeout(ATTEMPT);
    let cache = CacheLayer::new()
        .ttl(TTL)
        .jitter(0.0)
        .stale_if_error(Duration::from_secs(600))
        .load_timeout(WRITER_LOAD_TIMEOUT)
        .observer(metrics.cache_observer("vault"))
        .health_signal(monitor.health_signal());
    let store = StoreBuilder::new(
        VaultStore::builder(client(proxy.addr).await.unwrap())
            .mount("secret")
            .prefix(&prefix)
            .build()
            .unwrap(),
    )
    .layer(metrics.layer())
    .layer(cache)
    .layer(breaker)
    .layer(RetryLayer::new())
    .layer(monitor)
    .layer(TimeoutLayer::all(ATTEMPT))
    .try_build()
    .unwrap();

    let keys: Vec<KeyName> = (0..KEYS)
        .map(|i| KeyName::new(format!("k{i:03}")).unwrap())
        .collect();
    for k in &keys {
        store
            .put(k.as_str(), format!("{k}@1").as_str())
            .await
            .unwrap();
        store.get(k).await.unwrap();
    }
    let shared = Arc::new(Shared {
        state: keys
            .iter()
            .map(|_| {
                std::sync::Mutex::new(KeyState {
                    attempted: 1,
                    ..KeyState::default()
                })
            })
            .collect(),
        refused: keys.iter().map(|_| AtomicBool::new(false)).collect(),
        keys,
        phase: std::sync::atomic::AtomicUsize::new(0),
        counts: std::sync::Mutex::new(vec![PhaseCounts::default(); PHASES.len()]),
        violations: std::sync::Mutex::default(),
    });
    let mut tasks: Vec<_> = (0..READERS)
        .map(|r| tokio::spawn(reader(store.clone(), shared.clone(), r * KEYS / READERS)))
        .collect();
    tasks.push(tokio::spawn(writer(store.clone(), shared.clone())));
    let next = |phase: &str| {
        let i = PHASES.iter().position(|p| *p == phase).unwrap();
        shared.phase.store(i, Ordering::SeqCst);
    };

    tokio::time::sleep(Duration::from_secs(3)).await;
    next("sealed");
    bao(&server, &["operator", "seal"]);
    tokio::time::sleep(Duration::from_secs(6)).await;
    next("unsealed");
    bao(&server, &["operator", "unseal", &server.unseal_key]);
    tokio::time::sleep(Duration::from_secs(6)).await;
    next("killed");
    proxy.kill().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    next("revived");
    proxy.revive().await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    next("frozen");
    proxy.frozen.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(4)).await;
    next("unfrozen");
    proxy.frozen.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(6)).await;
    next("done");
    for t in tasks {
        t.await.unwrap();
    }

    let counts = shared.counts.lock().unwrap().clone();
    for (phase, c) in PHASES.iter().zip(&counts) {
        eprintln!("{phase}: {c:?}");
    }
    let violations = shared.violations.lock().unwrap().clone();
    assert!(
        violations.is_empty(),
        "{} reads failed while the cache had a value to serve, e.g. {:?}",
        violations.len(),
        &violations[..violations.len().min(10)]
    );
    let phase = |name: &str| &counts[PHASES.iter().position(|p| *p == name).unwrap()];
    for outage in ["sealed", "killed", "frozen"] {
        let c = phase(outage);
        assert!(c.ok > 50, "{outage}: {c:?}");
    }
    // The sealed Vault and the killed proxy refused writes, and what they refused kept its
    // fallback: reads of those keys were served.
    for outage in ["sealed", "killed"] {
        let c = phase(outage);
        assert!(c.writes_refused > 0, "{outage}: {c:?}");
        assert!(c.kept_after_refusal > 0, "{outage}: {c:?}");
    }
    // While the monitor knew the backend was down, stale reads did not wait for reloads.
    for outage in ["sealed", "killed", "frozen"] {
        let c = phase(outage);
        assert!(
            c.slowest_ok_read < Duration::from_millis(1500),
            "{outage}: {c:?}"
        );
    }
    let text = {
        let mut text = String::new();
        kms_metrics::prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        text
    };
    let stale = text
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                r#"kms_key_operations_total{operation="get",backend="vault",store="vault",status="stale"} "#,
            )
        })
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap();
    eprintln!("stale reads counted: {stale}");
    assert!(stale > 0.0);
    drop(server);
}
