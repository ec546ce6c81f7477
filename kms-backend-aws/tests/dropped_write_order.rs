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
/// The hold of the retry test: longer than every attempt of the retry layer put together.
const LONG_HOLD: Duration = Duration::from_millis(2500);

#[derive(Default)]
struct Counters {
    /// Hold back the next request naming this target.
    armed: AtomicBool,
    /// Hold for [`LONG_HOLD`] instead of [`HOLD`].
    long: AtomicBool,
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
                tokio::spawn(relay(client, upstream.clone(), target, shared.clone()));
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
///
/// The connection to moto opens only once the request's first bytes are due there: the test
/// server serves one connection at a time (scripts/peers/moto_server.py), so a connection
/// held open without its request would stall every other test's requests for the hold.
async fn relay(client: TcpStream, upstream: String, target: &[u8], counters: Arc<Counters>) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let mut buf = vec![0u8; 64 * 1024];
    let first = match client_rx.read(&mut buf).await {
        Ok(0) | Err(_) => return,
        Ok(n) => n,
    };
    let held = Arc::new(AtomicBool::new(false));
    let hold = |chunk: &[u8]| {
        let due = chunk.windows(target.len()).any(|w| w == target)
            && counters.armed.swap(false, Ordering::SeqCst);
        if due {
            held.store(true, Ordering::SeqCst);
        }
        due.then(|| {
            if counters.long.load(Ordering::SeqCst) {
                LONG_HOLD
            } else {
                HOLD
            }
        })
    };
    if let Some(delay) = hold(&buf[..first]) {
        tokio::time::sleep(delay).await;
    }
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let (mut server_rx, mut server_tx) = server.into_split();
    if server_tx.write_all(&buf[..first]).await.is_err() {
        return;
    }
    // Later requests on this connection (a server that keeps connections alive).
    let later_target = target.to_vec();
    let later_counters = counters.clone();
    let held_later = held.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if buf[..n]
                .windows(later_target.len())
                .any(|w| w == later_target.as_slice())
                && later_counters.armed.swap(false, Ordering::SeqCst)
            {
                held_later.store(true, Ordering::SeqCst);
                tokio::time::sleep(HOLD).await;
            }
            if server_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
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

/// A `remove` through `Retry(Timeout(…))` whose first `DeleteSecret` reaches AWS late: the
/// retry does not queue behind the attempt still in flight (it would time out behind it on
/// every attempt), it deletes at once; the key is gone and the next store still wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_remove_does_not_wait_behind_its_first_attempt() {
    use kms_core::{RetryLayer, StoreBuilder, TimeoutLayer};
    let proxy = LateProxy::start(b"secretsmanager.DeleteSecret").await;
    let config = common::connection(&proxy.url()).load().await.unwrap();
    let sm = kms_backend_aws::SecretsManagerStore::builder(&config)
        .deletion(kms_backend_aws::Deletion::Force)
        .unwrap()
        .build()
        .unwrap();
    let store = StoreBuilder::new(sm.clone())
        .layer(
            RetryLayer::new()
                .max_retries(2)
                .base_delay(Duration::from_millis(1))
                .jitter(Duration::ZERO),
        )
        .layer(TimeoutLayer::all(Duration::from_millis(400)))
        .build();
    let k = KeyName::new(format!("{}/db", common::unique("retried-remove"))).unwrap();
    sm.store(&k, "old".into()).await.unwrap();

    proxy.counters.long.store(true, Ordering::SeqCst);
    proxy.counters.armed.store(true, Ordering::SeqCst);
    store.remove(&k).await.unwrap();
    assert_eq!(sm.get(&k).await.unwrap_err().kind(), ErrorKind::NotFound);
    // The late first delete lands before this store, not after it.
    sm.store(&k, "after".into()).await.unwrap();
    proxy.wait_answered().await;
    assert_eq!(sm.get(&k).await.unwrap().value.expose_secret(), b"after");
    sm.remove(&k).await.unwrap();
}

/// A caller that drops a `store` and then removes the key inside the same `CallContext`
/// (one scope around both): the remove is another write, not a repeat of the store, so it
/// waits for the store and wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remove_in_the_same_write_context_does_not_join_a_store() {
    use kms_core::CallContext;
    let proxy = LateProxy::start(b"secretsmanager.PutSecretValue").await;
    let config = common::connection(&proxy.url()).load().await.unwrap();
    let sm = kms_backend_aws::SecretsManagerStore::builder(&config)
        .deletion(kms_backend_aws::Deletion::Force)
        .unwrap()
        .build()
        .unwrap();
    let k = KeyName::new(format!("{}/db", common::unique("same-context"))).unwrap();
    sm.store(&k, "old".into()).await.unwrap();

    proxy.counters.armed.store(true, Ordering::SeqCst);
    CallContext::new()
        .scope(async {
            let dropped =
                tokio::time::timeout(Duration::from_millis(200), sm.store(&k, "new".into())).await;
            assert!(dropped.is_err(), "the store was dropped while held back");
            sm.remove(&k).await.unwrap();
        })
        .await;
    proxy.wait_answered().await;
    // Every write sent has finished (the dropped store included), so the state is final.
    for _ in 0..1000 {
        if sm.writes_in_flight() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sm.writes_in_flight(), 0);
    let got = (sm.get(&k).await)
        .map(|s| s.value.expose_secret().to_vec())
        .map_err(|e| e.kind());
    assert_eq!(
        got,
        Err(ErrorKind::NotFound),
        "the remove ran beside the store and was undone by it"
    );
}
