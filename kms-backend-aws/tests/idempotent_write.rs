//! One logical write is one version, against the moto server.
//!
//! A `store` through `Retry(Timeout(SecretsManager))` whose first `PutSecretValue` lands on
//! the server but answers after the timeout: the retry sends the same `ClientRequestToken`
//! (kms-core's `CallContext` id), the server recognises the repeat, and the secret has one
//! new version, with `AWSPREVIOUS` still on the old one. moto implements the token the way
//! AWS documents it (a repeat with the same token and value returns the existing version;
//! the same token with another value is refused), so this runs on moto, not a mock.
//!
//! The late answer comes from a small TCP proxy between the SDK and moto that holds back the
//! response to one armed `PutSecretValue` longer than the timeout.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use kms_backend_aws::sdk::aws_sdk_secretsmanager;
use kms_backend_aws::{Deletion, SecretsManagerStore, VersionStage};
use kms_core::envelope::EnvelopeLayer;
use kms_core::{KeyName, KeyStore, RetryLayer, StoreBuilder, TimeoutLayer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The per-attempt deadline of the timeout layer.
const TIMEOUT: Duration = Duration::from_millis(400);
/// How long the proxy holds back the armed answer: well past [`TIMEOUT`].
const HOLD: Duration = Duration::from_millis(1500);

const PUT: &[u8] = b"secretsmanager.PutSecretValue";

#[derive(Default)]
struct Counters {
    /// Delay the answer to the next `PutSecretValue`.
    armed: AtomicBool,
    /// `PutSecretValue` requests seen.
    puts: AtomicUsize,
    /// Answers held back.
    held: AtomicUsize,
}

/// A TCP proxy to moto that can hold back the answer to one `PutSecretValue`.
struct SlowProxy {
    addr: SocketAddr,
    counters: Arc<Counters>,
}

impl SlowProxy {
    async fn start() -> Self {
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
                tokio::spawn(relay(client, server, shared.clone()));
            }
        });
        Self { addr, counters }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn arm(&self) {
        self.counters.armed.store(true, Ordering::SeqCst);
    }

    fn puts(&self) -> usize {
        self.counters.puts.load(Ordering::SeqCst)
    }

    fn held(&self) -> usize {
        self.counters.held.load(Ordering::SeqCst)
    }
}

/// Copies bytes both ways; the first answer after an armed `PutSecretValue` on this
/// connection waits [`HOLD`] (the request itself reaches moto at once, so the write lands).
async fn relay(client: TcpStream, server: TcpStream, counters: Arc<Counters>) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let hold_next = Arc::new(AtomicBool::new(false));
    let hold = hold_next.clone();
    let c = counters.clone();
    let upstream = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        // The end of the previous read, so a target split across reads is still seen.
        let mut tail: Vec<u8> = Vec::new();
        loop {
            let n = match client_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut window = std::mem::take(&mut tail);
            window.extend_from_slice(&buf[..n]);
            if window.windows(PUT.len()).any(|w| w == PUT) {
                c.puts.fetch_add(1, Ordering::SeqCst);
                if c.armed.swap(false, Ordering::SeqCst) {
                    hold.store(true, Ordering::SeqCst);
                }
                window.clear();
            }
            tail = window[window.len().saturating_sub(PUT.len())..].to_vec();
            if server_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_tx.shutdown().await;
    });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match server_rx.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if hold_next.swap(false, Ordering::SeqCst) {
            counters.held.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(HOLD).await;
        }
        if client_tx.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    upstream.abort();
}

fn resilient<S: KeyStore>(inner: S) -> StoreBuilder {
    StoreBuilder::new(inner)
        .layer(
            RetryLayer::new()
                .max_retries(2)
                .base_delay(Duration::from_millis(1))
                .jitter(Duration::ZERO),
        )
        .layer(TimeoutLayer::all(TIMEOUT))
}

/// Every version of `name` (AWS keeps up to 100; deprecated ones included).
async fn versions(
    client: &aws_sdk_secretsmanager::Client,
    name: &str,
) -> Vec<(String, Vec<String>)> {
    let out = client
        .list_secret_version_ids()
        .secret_id(name)
        .include_deprecated(true)
        .send()
        .await
        .unwrap();
    out.versions()
        .iter()
        .map(|v| {
            (
                v.version_id().unwrap().to_owned(),
                v.version_stages().to_vec(),
            )
        })
        .collect()
}

/// `v1`, then one `store(v2)` whose first Put lands and answers late (a rotation whose write
/// timed out but was applied). Right: two versions, AWSCURRENT = v2, AWSPREVIOUS = v1, so a
/// reader in the rotation's grace period still gets the old password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_put_that_landed_is_one_version_and_keeps_awsprevious() {
    let proxy = SlowProxy::start().await;
    let config = common::connection(&proxy.url()).load().await.unwrap();
    let sm = SecretsManagerStore::builder(&config)
        .deletion(Deletion::Force)
        .unwrap()
        .build()
        .unwrap();
    let k = KeyName::new(format!("{}/db", common::unique("idempotent"))).unwrap();
    let v1 = sm.store(&k, "password-1".into()).await.unwrap();

    let store = resilient(sm.clone()).build();
    assert_eq!(store.to_string(), "Retry(Timeout(SecretsManager))");
    proxy.arm();
    let puts_before = proxy.puts();
    let v2 = store.store(&k, "password-2".into()).await.unwrap();
    assert_eq!(proxy.held(), 1, "the first Put's answer was held back");
    assert_eq!(
        proxy.puts() - puts_before,
        2,
        "the first Put timed out and was retried"
    );

    let all = versions(sm.client(), k.as_str()).await;
    assert_eq!(all.len(), 2, "one logical write, one version: {all:?}");
    let current = sm.get(&k).await.unwrap();
    assert_eq!(current.value.expose_secret(), b"password-2");
    assert_eq!(
        current.meta.version, v2.version,
        "the retry returned the landed version"
    );
    let previous = sm.get_stage(&k, &VersionStage::Previous).await.unwrap();
    assert_eq!(previous.value.expose_secret(), b"password-1");
    assert_eq!(previous.meta.version, v1.version);
    sm.remove(&k).await.unwrap();
}

/// The same with the envelope decorator below the retry layer (`Retry(Timeout(Envelope(…)))`),
/// where each attempt goes through sealing again: still one version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_enveloped_put_that_landed_is_one_version() {
    let proxy = SlowProxy::start().await;
    let config = common::connection(&proxy.url()).load().await.unwrap();
    let sm = SecretsManagerStore::builder(&config)
        .deletion(Deletion::Force)
        .unwrap()
        .build()
        .unwrap();
    let kms = Arc::new(common::kms_provider().await);
    let k = KeyName::new(format!("{}/db", common::unique("idempotent-env"))).unwrap();
    let store = resilient(sm.clone()).layer(EnvelopeLayer::new(kms)).build();
    store.store(&k, "password-1".into()).await.unwrap();
    proxy.arm();
    store.store(&k, "password-2".into()).await.unwrap();
    assert_eq!(proxy.held(), 1);

    let all = versions(sm.client(), k.as_str()).await;
    assert_eq!(all.len(), 2, "one logical write, one version: {all:?}");
    assert_eq!(
        store.get(&k).await.unwrap().value.expose_secret(),
        b"password-2"
    );
    let previous = sm.get_stage(&k, &VersionStage::Previous).await.unwrap();
    let opened = store
        .get_version(&k, previous.meta.version.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(
        opened.value.expose_secret(),
        b"password-1",
        "AWSPREVIOUS is v1"
    );
    sm.remove(&k).await.unwrap();
}

/// The retry layer opens a `CallContext` around reads as well as writes. A read never sends a
/// token, and each write through the layer gets a context (a token) of its own: two stores of
/// different values with reads around them make two versions. A token shared with an earlier
/// write would make AWS refuse the second value, and the store report the first as landed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_through_the_retry_layer_leave_each_write_its_own_token() {
    let sm = common::store().await;
    let k = KeyName::new(format!("{}/db", common::unique("read-contexts"))).unwrap();
    let store = resilient(sm.clone()).build();
    assert!(store.get(&k).await.unwrap_err().is_not_found());
    let v1 = store.store(&k, "password-1".into()).await.unwrap();
    assert_eq!(
        store.get(&k).await.unwrap().value.expose_secret(),
        b"password-1"
    );
    store.health().await.unwrap();
    let v2 = store.store(&k, "password-2".into()).await.unwrap();
    assert_ne!(v1.version, v2.version, "two writes, two tokens");

    let all = versions(sm.client(), k.as_str()).await;
    assert_eq!(all.len(), 2, "{all:?}");
    let current = sm.get(&k).await.unwrap();
    assert_eq!(current.value.expose_secret(), b"password-2");
    assert_eq!(current.meta.version, v2.version);
    let previous = sm.get_stage(&k, &VersionStage::Previous).await.unwrap();
    assert_eq!(previous.value.expose_secret(), b"password-1");
    assert_eq!(previous.meta.version, v1.version);
    sm.remove(&k).await.unwrap();
}
