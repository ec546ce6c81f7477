//! A failover store over two AWS Regions on the moto server (scripts/peers/moto.sh): the
//! primary Region reached through a TCP proxy the test cuts, the replica Region directly.
//! moto keeps Regions apart but does not replicate between them, so the test keeps the two
//! in sync itself (as `kms migrate` would). Secret names start with `fo-`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kms_backend_aws::{Deletion, SecretsManagerStore};
use kms_core::{ErrorKind, FailoverLayer, FailoverTarget, KeyName, KeyStore, Layer};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// A TCP proxy to moto that can be cut (listener closed, open connections dropped: new
/// connections are refused, as from a Region that is unreachable) and restored on the same
/// port.
struct Proxy {
    port: u16,
    target: String,
    up: Arc<AtomicBool>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Proxy {
    async fn start(target: String) -> Arc<Self> {
        let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let proxy = Arc::new(Self {
            port,
            target,
            up: Arc::new(AtomicBool::new(false)),
            tasks: std::sync::Mutex::new(Vec::new()),
        });
        proxy.restore();
        proxy
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn restore(self: &Arc<Self>) {
        if self.up.swap(true, Ordering::SeqCst) {
            return;
        }
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket
            .bind(format!("127.0.0.1:{}", self.port).parse().unwrap())
            .unwrap();
        let listener = socket.listen(64).unwrap();
        let me = self.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let target = me.target.clone();
                let conn = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                me.tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

fn moto_addr() -> String {
    common::endpoint()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

async fn region_store(url: &str, region: &str) -> SecretsManagerStore {
    let config = common::connection(url).region(region).load().await.unwrap();
    SecretsManagerStore::builder(&config)
        .deletion(Deletion::Force)
        .unwrap()
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_fail_over_to_the_replica_region_writes_fail_loudly_and_fail_back_holds_under_flapping()
 {
    let proxy = Proxy::start(moto_addr()).await;
    let primary = Arc::new(region_store(&proxy.url(), "us-east-1").await);
    let replica = Arc::new(region_store(&common::endpoint(), "eu-west-1").await);
    let key = KeyName::new(common::unique("fo-region")).unwrap();
    // Kept in sync: the same value in both Regions.
    primary.store(&key, "v1".into()).await.unwrap();
    replica.store(&key, "v1".into()).await.unwrap();

    let failover = FailoverLayer::new("us-east-1")
        .fail_after(1)
        .fail_back_after(3)
        .hold_down(Duration::from_secs(2))
        .probe_interval(Duration::from_millis(100))
        .probe_timeout(Duration::from_secs(2))
        .replica(FailoverTarget::new("eu-west-1", replica.clone()));
    let handle = failover.handle();
    let store = failover.layer(primary.clone());
    let read = || async {
        store
            .get(&key)
            .await
            .map(|s| s.value.expose_str().unwrap().to_owned())
    };
    assert_eq!(read().await.unwrap(), "v1");
    assert_eq!(handle.active(), "us-east-1");

    // The primary Region becomes unreachable: every read still answers, from the replica.
    proxy.cut();
    for _ in 0..10 {
        assert_eq!(
            read().await.expect("a read while the primary is down"),
            "v1"
        );
    }
    assert_eq!(handle.active(), "eu-west-1");
    assert_eq!(handle.failovers(), 1);

    // Writes go to the primary only: they fail, saying so, and the replica is untouched.
    let err = store.store(&key, "v2".into()).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("writes go to the primary 'us-east-1' only"),
        "{err}"
    );
    assert_eq!(
        replica.get(&key).await.unwrap().value.expose_str().unwrap(),
        "v1"
    );

    // A flapping primary (up 300 ms, down 300 ms, for 4 s): reads keep answering, and the
    // store does not fail back (the hold-down restarts at each failure).
    let started = Instant::now();
    let mut up = false;
    while started.elapsed() < Duration::from_secs(4) {
        if up {
            proxy.cut();
        } else {
            proxy.restore();
        }
        up = !up;
        for _ in 0..6 {
            assert_eq!(read().await.expect("a read while the primary flaps"), "v1");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(handle.active(), "eu-west-1", "failed back during a flap");
    }
    proxy.cut();
    assert_eq!(handle.failovers(), 1, "no switching back and forth");

    // Recovered for good: back on the primary after the hold-down, once.
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    while handle.active() != "us-east-1" {
        assert!(
            Instant::now() < deadline,
            "never failed back after recovery"
        );
        assert_eq!(read().await.unwrap(), "v1");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(handle.failovers(), 2);
    store
        .store(&key, "v2".into())
        .await
        .expect("writes work again on the primary");
    assert_eq!(read().await.unwrap(), "v2");

    primary.remove(&key).await.unwrap();
    replica.remove(&key).await.unwrap();
}
