//! Which failed writes prove that nothing was applied, against real peers: a closed port, a
//! private moto server (own port, stopped mid-test), TLS spoken to the shared moto's plain
//! HTTP listener, a listener whose accept queue is full (connect timeout), and endpoints that
//! take the request and then hang or drop the connection (the outcome is unknown).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kms_backend_aws::SecretsManagerStore;
use kms_core::{Error, ErrorKind, KeyName, KeyStore};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

fn key() -> KeyName {
    KeyName::new(format!("kms-tests/{}", common::unique("not-applied"))).unwrap()
}

/// No character that could split or disguise a log line.
fn assert_one_line(err: &Error) {
    let text = err.to_string();
    assert!(!text.chars().any(char::is_control), "{text:?}");
}

/// A store on `url` with this crate's defaults (one attempt per call).
async fn store_at(url: &str) -> SecretsManagerStore {
    let config = common::connection(url).load().await.unwrap();
    SecretsManagerStore::builder(&config).build().unwrap()
}

fn closed_port_url() -> String {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    url
}

#[tokio::test]
async fn a_closed_port_proves_nothing_was_applied() {
    let err = store_at(&closed_port_url())
        .await
        .store(&key(), "the-value".into())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.proves_not_applied(), "{err:?}");
    assert_one_line(&err);
}

#[tokio::test]
async fn with_sdk_retries_a_refused_connection_proves_nothing() {
    // The SDK retries a refused connection; this crate cannot see whether an earlier attempt
    // went out, so it claims nothing.
    let config = common::connection(&closed_port_url())
        .sdk_retries(true)
        .load()
        .await
        .unwrap();
    let err = SecretsManagerStore::builder(&config)
        .build()
        .unwrap()
        .store(&key(), "the-value".into())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(!err.proves_not_applied(), "{err:?}");
}

#[tokio::test]
async fn tls_to_a_plain_http_endpoint_fails_before_sending() {
    let url = common::endpoint().replace("http://", "https://");
    let err = store_at(&url)
        .await
        .store(&key(), "the-value".into())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.proves_not_applied(), "{err:?}");
    assert_one_line(&err);
}

#[tokio::test]
async fn a_connect_timeout_proves_nothing_was_sent() {
    // A listener that never accepts, its queue filled: the next SYN goes unanswered.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await
        {
            queued.push(s);
        }
    }
    let config = common::connection(&format!("http://{addr}"))
        .connect_timeout(Duration::from_millis(300))
        .load()
        .await
        .unwrap();
    let store = SecretsManagerStore::builder(&config).build().unwrap();
    let started = Instant::now();
    let err = store.store(&key(), "the-value".into()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{err}");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.proves_not_applied(), "{err:?}");
    drop((listener, queued));
}

/// A moto server of this test alone, on a free port; killed when dropped.
struct PrivateMoto(Child);

impl PrivateMoto {
    async fn start() -> (Self, String) {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("`moto_server` on PATH (scripts/peers/moto.sh installs it)");
        let server = Self(child);
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "the private moto did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (server, url)
    }
}

impl Drop for PrivateMoto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_refuses_the_next_write_which_proves_nothing_was_applied() {
    let (moto, url) = PrivateMoto::start().await;
    let store = store_at(&url).await;
    let k = key();
    store.store(&k, "v1".into()).await.unwrap();
    drop(moto);
    // Let the client's connection pool see its connection close.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let err = store.store(&k, "v2".into()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.proves_not_applied(), "{err:?}");
}

/// A server that reads one whole request and then either keeps the connection open without
/// answering (`answer_never`) or closes it.
async fn taking_requests(answer_never: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                    let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&seen[..end]).to_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if seen.len() >= end + 4 + length {
                        break;
                    }
                }
                if answer_never {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn a_request_that_went_out_and_got_no_answer_leaves_the_outcome_unknown() {
    // Dropped after the request arrived.
    let err = store_at(&taking_requests(false).await)
        .await
        .store(&key(), "the-value".into())
        .await
        .unwrap_err();
    assert!(!err.proves_not_applied(), "{err:?}");
    assert_one_line(&err);

    // Never answered: the SDK's operation timeout.
    let config = common::connection(&taking_requests(true).await)
        .operation_timeout(Duration::from_millis(300))
        .load()
        .await
        .unwrap();
    let err = SecretsManagerStore::builder(&config)
        .build()
        .unwrap()
        .store(&key(), "the-value".into())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(!err.proves_not_applied(), "{err:?}");
}
