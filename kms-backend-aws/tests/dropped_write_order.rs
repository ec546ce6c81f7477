//! A write dropped by its caller after its request was sent cannot undo a later write
//! (kms-core's `WriteOrder`), against the moto server.
//!
//! A small TCP proxy between the SDK and moto holds back one armed request on its way *to*
//! moto, as a slow network or a busy server does: the SDK has sent it, the caller gives up
//! (a timeout drops the future), and moto applies it later. Without ordering, the caller's
//! next write to the key goes out at once and is then undone by the late one.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use kms_core::{ErrorKind, KeyName, KeyStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long the proxy holds back the armed request.
const HOLD: Duration = Duration::from_millis(1000);

#[derive(Default)]
struct Counters {
    /// Hold back the next request naming this target.
    armed: AtomicBool,
    /// Held-back requests moto has answered.
    answered: AtomicUsize,
}

/// Holds back the next request whose body names `target` (e.g. `secretsmanager.DeleteSecret`).
struct LateProxy {
    addr: SocketAddr,
    counters: Arc<Counters>,
}

impl LateProxy {
    async fn start(target: &'static [u8]) -> Self {
        let upstream = common::endpoint()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counters = Arc::new(Counters::default());
        let shared = counters.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                tokio::spawn(relay(client, server, target, shared.clone()));
            }
        });
        Self { addr, counters }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits (at most 10 s) until moto answered the held-back request.
    async fn wait_answered(&self) {
        for _ in 0..1000 {
            if self.counters.answered.load(Ordering::SeqCst) > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the held-back request was never answered");
    }
}

/// Copies bytes both ways; a request naming `target` while armed reaches moto [`HOLD`] late,
/// even if the client has gone by then.
async fn relay(client: TcpStream, server: TcpStream, target: &[u8], counters: Arc<Counters>) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let held = Arc::new(AtomicBool::new(false));
    let held_up = held.clone();
    let c = counters.clone();
    let target = target.to_vec();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if buf[..n]
                .windows(target.len())
                .any(|w| w == target.as_slice())
                && c.armed.swap(false, Ordering::SeqCst)
            {
                held_up.store(true, Ordering::SeqCst);
                tokio::time::sleep(HOLD).await;
            }
            if server_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match server_rx.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if held.swap(false, Ordering::SeqCst) {
            counters.answered.fetch_add(1, Ordering::SeqCst);
        }
        if client_tx.write_all(&buf[..n]).await.is_err() {
            // The client gave up; keep reading so moto's answer is still counted.
            continue;
        }
    }
}

/// `remove` dropped after its `DeleteSecret` was sent, then `store`: the key holds the
/// stored value, not NotFound (the late delete ran before the store, not after).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_remove_does_not_undo_the_next_store() {
    let proxy = LateProxy::start(b"secretsmanager.DeleteSecret").await;
    let config = common::connection(&proxy.url()).load().await.unwrap();
    let sm = kms_backend_aws::SecretsManagerStore::builder(&config)
        .deletion(kms_backend_aws::Deletion::Force)
        .unwrap()
        .build()
        .unwrap();
    let k = KeyName::new(format!("{}/db", common::unique("dropped-remove"))).unwrap();
    sm.store(&k, "old".into()).await.unwrap();

    proxy.counters.armed.store(true, Ordering::SeqCst);
    let dropped = tokio::time::timeout(Duration::from_millis(200), sm.remove(&k)).await;
    assert!(dropped.is_err(), "the remove was dropped while held back");
    sm.store(&k, "after".into()).await.unwrap();
    proxy.wait_answered().await;

    let got = sm.get(&k).await.map(|s| s.value.expose_secret().to_vec());
    assert_eq!(
        got.as_deref().map_err(|e| e.kind()),
        Ok(&b"after"[..]),
        "the dropped remove undid the later store"
    );
    sm.remove(&k).await.unwrap();
    assert_eq!(sm.get(&k).await.unwrap_err().kind(), ErrorKind::NotFound);
}

/// `store` dropped after its `PutSecretValue` was sent, then another `store`: the later
/// value stays current.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_store_does_not_undo_the_next_store() {
    let proxy = LateProxy::start(b"secretsmanager.PutSecretValue").await;
    let config = common::connection(&proxy.url()).load().await.unwrap();
    let sm = kms_backend_aws::SecretsManagerStore::builder(&config)
        .deletion(kms_backend_aws::Deletion::Force)
        .unwrap()
        .build()
        .unwrap();
    let k = KeyName::new(format!("{}/db", common::unique("dropped-store"))).unwrap();
    sm.store(&k, "old".into()).await.unwrap();

    proxy.counters.armed.store(true, Ordering::SeqCst);
    let dropped =
        tokio::time::timeout(Duration::from_millis(200), sm.store(&k, "new".into())).await;
    assert!(dropped.is_err(), "the store was dropped while held back");
    sm.store(&k, "after".into()).await.unwrap();
    proxy.wait_answered().await;

    let got = sm.get(&k).await.unwrap();
    assert_eq!(
        got.value.expose_secret(),
        b"after",
        "the dropped store undid the later one"
    );
    sm.remove(&k).await.unwrap();
}
