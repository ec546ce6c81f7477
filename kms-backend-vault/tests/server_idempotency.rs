//! Retried writes, on a real OpenBao dev server: one logical write is one version on KV v2,
//! even when the retry layer re-sends a `store` whose first attempt landed but answered too
//! late.
//!
//! A TCP proxy in front of OpenBao holds back the answer to one armed `POST` (the write has
//! reached Vault and is applied) past the timeout layer's deadline; `Retry(Timeout(Vault))`
//! then sends the write again.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kms_backend_vault::{VaultAuth, VaultClient, VaultStore};
use kms_core::{KeyName, KeyStore, Retry, RetryLayer, Timeout, TimeoutLayer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long the armed answer is held back: well past the timeout layer's deadline.
const HOLD: Duration = Duration::from_millis(800);
const DEADLINE: Duration = Duration::from_millis(300);

/// What the proxy holds back for [`HOLD`] when armed (once).
#[derive(Clone, Copy, PartialEq)]
enum Hold {
    /// The next `POST` reaches Vault at once; its answer comes late.
    Answer,
    /// The next `POST` itself reaches Vault late.
    Request,
}

/// Forwards connections to `upstream`; when `armed`, holds back the next `POST` (or its
/// answer) by [`HOLD`].
async fn slow_proxy(upstream: SocketAddr, armed: Arc<AtomicBool>, what: Hold) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let armed = armed.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let hold = Arc::new(AtomicBool::new(false));
                let hold_up = hold.clone();
                let up = tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = cr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        if buf[..n].starts_with(b"POST ") && armed.swap(false, Ordering::SeqCst) {
                            match what {
                                Hold::Answer => hold_up.store(true, Ordering::SeqCst),
                                Hold::Request => tokio::time::sleep(HOLD).await,
                            }
                        }
                        if sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = sr.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if hold.swap(false, Ordering::SeqCst) {
                        tokio::time::sleep(HOLD).await;
                    }
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                up.abort();
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_store_that_had_landed_is_one_version() {
    let upstream: SocketAddr = common::addr()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let armed = Arc::new(AtomicBool::new(false));
    let proxy = slow_proxy(upstream, armed.clone(), Hold::Answer).await;
    let client = VaultClient::builder(format!("http://{proxy}"))
        .auth(VaultAuth::token(common::root_token()))
        .build()
        .await
        .unwrap();
    let vault = VaultStore::builder(client).build().unwrap();
    let direct = VaultStore::builder(common::root_client().await)
        .build()
        .unwrap();
    let store = Retry::new(
        Timeout::new(vault, TimeoutLayer::all(DEADLINE)),
        RetryLayer::new()
            .base_delay(Duration::from_millis(1))
            .jitter(Duration::ZERO),
    );

    let k = KeyName::new(format!("kms-tests/{}", common::unique("retried"))).unwrap();
    let v1 = store.store(&k, "one".into()).await.unwrap();
    assert_eq!(v1.version.as_deref(), Some("1"));

    armed.store(true, Ordering::SeqCst);
    let v2 = store.store(&k, "two".into()).await.unwrap();
    assert!(!armed.load(Ordering::SeqCst), "the proxy held back a write");
    // The first attempt landed (version 2) and timed out; the retry found it.
    assert_eq!(v2.version.as_deref(), Some("2"));
    let current = direct.get(&k).await.unwrap();
    assert_eq!(current.value.expose_secret(), b"two");
    assert_eq!(
        current.meta.version.as_deref(),
        Some("2"),
        "no third version"
    );
    let previous = direct.get_version(&k, "1").await.unwrap();
    assert_eq!(previous.value.expose_secret(), b"one");
    let meta = common::admin("GET", &format!("secret/metadata/{k}"), None).await;
    assert_eq!(meta["data"]["current_version"], 2);

    // Once more: the repeat compares against this write's value, not the last one.
    armed.store(true, Ordering::SeqCst);
    let v3 = store.store(&k, "three".into()).await.unwrap();
    assert_eq!(v3.version.as_deref(), Some("3"));
    let meta = common::admin("GET", &format!("secret/metadata/{k}"), None).await;
    assert_eq!(meta["data"]["current_version"], 3);
    direct.remove(&k).await.unwrap();
}

/// A write its caller drops while it is on the wire runs to completion before the next write
/// of that key starts, so it cannot land after it and undo it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_write_cannot_land_after_the_next_one() {
    let upstream: SocketAddr = common::addr()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let armed = Arc::new(AtomicBool::new(false));
    let proxy = slow_proxy(upstream, armed.clone(), Hold::Request).await;
    let client = VaultClient::builder(format!("http://{proxy}"))
        .auth(VaultAuth::token(common::root_token()))
        .build()
        .await
        .unwrap();
    let store = VaultStore::builder(client).build().unwrap();
    let k = KeyName::new(format!("kms-tests/{}", common::unique("dropped"))).unwrap();
    store.store(&k, "before".into()).await.unwrap();

    armed.store(true, Ordering::SeqCst);
    let dropped = tokio::time::timeout(DEADLINE, store.store(&k, "abandoned".into())).await;
    assert!(dropped.is_err(), "the caller gave up on the write");
    let last = store.store(&k, "last".into()).await.unwrap();
    assert_eq!(
        last.version.as_deref(),
        Some("3"),
        "after the abandoned write (2)"
    );
    tokio::time::sleep(HOLD).await;
    let direct = VaultStore::builder(common::root_client().await)
        .build()
        .unwrap();
    assert_eq!(
        direct
            .get_version(&k, "2")
            .await
            .unwrap()
            .value
            .expose_secret(),
        b"abandoned"
    );
    assert_eq!(direct.get(&k).await.unwrap().value.expose_secret(), b"last");
    direct.remove(&k).await.unwrap();
}
