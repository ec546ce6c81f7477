//! Chaos: the full stack (cache with stale-if-error → breaker → retry → timeout
//! 500 ms → Vault) over a real OpenBao server that this test starts on its own free port
//! (never the shared one: it freezes and seals it), reached through a local TCP proxy that can
//! stop answering. Eight readers with a 2 s deadline of their own read cached-then-expired keys
//! while the server is frozen, then sealed, and come back. Asserted: no caller error while a
//! stale value exists, the breaker open within a few attempt timeouts, no resurrected value,
//! recovery after the server returns within the breaker's open delay and one load. About 40 s.
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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
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
