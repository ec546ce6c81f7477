//! Which failed writes prove that nothing was applied, against real peers: a private OpenBao
//! dev server (own port, sealed with `bao operator seal`, stopped at the end), a closed port,
//! and a TCP proxy in front of the shared dev server that refuses connections or drops them
//! after the request arrived. Also: OpenBao's multi-line policy denial ends up on one line.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kms_backend_vault::{VaultAuth, VaultClient, VaultStore};
use kms_core::{Error, ErrorKind, KeyName, KeyStore};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, copy_bidirectional};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// No character that could split or disguise a log line.
fn assert_one_line(err: &Error) {
    let text = err.to_string();
    assert!(!text.chars().any(char::is_control), "{text:?}");
}

/// A port with nothing listening on it (nor on the next one: a dev server also takes
/// port + 1 for clustering).
fn free_port() -> u16 {
    loop {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// An OpenBao dev server of this test alone, on a free port; killed when dropped.
struct PrivateBao {
    child: Child,
    addr: String,
}

impl PrivateBao {
    async fn start() -> Self {
        let port = free_port();
        let addr = format!("http://127.0.0.1:{port}");
        let child = Command::new("bao")
            .args([
                "server",
                "-dev",
                "-dev-root-token-id=root",
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("`bao` on PATH (scripts/peers/openbao.sh installs it)");
        let server = Self { child, addr };
        let deadline = Instant::now() + Duration::from_secs(30);
        let http = reqwest::Client::new();
        loop {
            let health = http
                .get(format!("{}/v1/sys/health", server.addr))
                .send()
                .await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "the private dev server did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `bao operator seal` against this server (never the shared one).
    fn seal(&self) {
        let status = Command::new("bao")
            .args(["operator", "seal"])
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", "root")
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .stdout(Stdio::null())
            .status()
            .expect("`bao` on PATH");
        assert!(status.success(), "bao operator seal");
    }
}

impl Drop for PrivateBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the proxy does with a new connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Pipe it to the upstream server.
    Forward,
    /// Read one whole HTTP request, then close the connection without an answer.
    DropAfterRequest,
}

/// A TCP proxy in front of a real server, whose behaviour a test switches.
struct Proxy {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    accept: JoinHandle<()>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(Mutex::new(Mode::Forward));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let (mode, connections) = (mode.clone(), connections.clone());
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let mode = *mode.lock();
                    let task = tokio::spawn(serve(client, upstream, mode));
                    connections.lock().push(task);
                }
            }
        });
        Self {
            addr,
            mode,
            accept,
            connections,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// New connections get `mode`; the open ones are closed (the client's pooled connection
    /// too), so the next request opens a new one.
    async fn switch(&self, mode: Mode) {
        *self.mode.lock() = mode;
        self.close_connections().await;
    }

    /// Stops listening: the port refuses connections from now on.
    async fn refuse(&self) {
        self.accept.abort();
        self.close_connections().await;
    }

    async fn close_connections(&self) {
        for task in self.connections.lock().drain(..) {
            task.abort();
        }
        // Give the client's connection pool time to see the connections close.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        for task in self.connections.lock().drain(..) {
            task.abort();
        }
    }
}

async fn serve(mut client: TcpStream, upstream: SocketAddr, mode: Mode) {
    match mode {
        Mode::Forward => {
            if let Ok(mut server) = TcpStream::connect(upstream).await {
                let _ = copy_bidirectional(&mut client, &mut server).await;
            }
        }
        Mode::DropAfterRequest => {
            // The whole request: headers, then Content-Length bytes of body.
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match client.read(&mut buf).await {
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
                    return; // dropped: closed without an answer
                }
            }
        }
    }
}

/// The shared dev server's socket address (the proxy's upstream).
fn shared_server() -> SocketAddr {
    let addr = common::addr();
    let host = addr
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    host.parse()
        .expect("KMS_TEST_VAULT_ADDR is http://<ip>:<port>")
}

async fn root_store(addr: &str) -> VaultStore {
    let client = VaultClient::builder(addr)
        .auth(VaultAuth::token(common::root_token()))
        .timeout(Duration::from_secs(5))
        .build()
        .await
        .expect("client");
    VaultStore::builder(client).build().unwrap()
}

fn key(tag: &str) -> KeyName {
    KeyName::new(format!("kms-tests/{}", common::unique(tag))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_server_refuses_a_store_and_proves_nothing_was_applied() {
    let server = PrivateBao::start().await;
    let store = root_store(&server.addr).await;
    let k = KeyName::new("sealed/key").unwrap();
    store.store(&k, "before".into()).await.unwrap();

    server.seal();
    let err = store.store(&k, "after".into()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert_eq!(err.code(), Some("503"), "{err}");
    assert!(err.message().contains("(sealed)"), "{err}");
    assert!(err.proves_not_applied(), "{err:?}");
    assert!(!err.never_reached_backend(), "Vault refused it: {err:?}");
    assert_one_line(&err);

    // A removal is refused the same way.
    let err = store.remove(&k).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.proves_not_applied(), "{err:?}");
}

#[tokio::test]
async fn a_refused_connection_proves_nothing_was_applied() {
    // Nothing listens: a lazy client cannot connect for its first write.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let client = VaultClient::builder(&addr)
        .auth(VaultAuth::token("root"))
        .build_lazy()
        .unwrap();
    let store = VaultStore::builder(client).build().unwrap();
    let err = store.store(&key("refused"), "v".into()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.message().contains("connection refused"), "{err}");
    assert!(err.proves_not_applied(), "{err:?}");
    assert_one_line(&err);

    // A connected client whose server stops listening: the write's own connect is refused.
    let proxy = Proxy::start(shared_server()).await;
    let store = root_store(&proxy.url()).await;
    let k = key("refused-later");
    store.store(&k, "v1".into()).await.unwrap();
    proxy.refuse().await;
    let err = store.store(&k, "v2".into()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.message().contains("connection refused"), "{err}");
    assert!(err.proves_not_applied(), "{err:?}");
    // And nothing was: the shared server still holds the first value.
    let direct = root_store(&common::addr()).await;
    assert_eq!(direct.get(&k).await.unwrap().value.expose_secret(), b"v1");
}

#[tokio::test]
async fn a_connection_dropped_after_the_request_was_sent_leaves_the_outcome_unknown() {
    let proxy = Proxy::start(shared_server()).await;
    let store = root_store(&proxy.url()).await;
    let k = key("dropped");
    store.store(&k, "v1".into()).await.unwrap();
    proxy.switch(Mode::DropAfterRequest).await;
    let err = store.store(&k, "v2".into()).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{err}"
    );
    assert!(!err.proves_not_applied(), "the request went out: {err:?}");
    assert_one_line(&err);
}

#[tokio::test]
async fn a_request_the_client_cannot_build_is_never_sent() {
    // A token HTTP cannot carry in a header.
    let client = VaultClient::builder(common::addr())
        .auth(VaultAuth::token("s3cr\nET-token"))
        .build_lazy()
        .unwrap();
    let store = VaultStore::builder(client).build().unwrap();
    let err = store
        .store(&key("unbuildable"), "v".into())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    assert!(err.proves_not_applied(), "{err:?}");
    assert!(err.message().contains("could not be built"), "{err}");
    assert!(!err.to_string().contains("s3cr"), "{err}");
    assert_one_line(&err);
}

#[tokio::test]
async fn a_policy_denial_is_one_line() {
    let policy = common::unique("deny-all-but");
    common::admin(
        "PUT",
        &format!("sys/policies/acl/{policy}"),
        Some(serde_json::json!({
            "policy": "path \"secret/data/allowed/*\" { capabilities = [\"create\", \"update\", \"read\"] }\n\
                       path \"sys/internal/ui/mounts/*\" { capabilities = [\"read\"] }"
        })),
    )
    .await;
    let token = common::admin(
        "POST",
        "auth/token/create",
        Some(serde_json::json!({ "policies": [policy], "ttl": "5m" })),
    )
    .await["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = VaultClient::builder(common::addr())
        .auth(VaultAuth::token(token))
        .build()
        .await
        .unwrap();
    let store = VaultStore::builder(client).build().unwrap();
    let err = store.store(&key("denied"), "v".into()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    // OpenBao answers `{"errors":["1 error occurred:\n\t* permission denied\n\n"]}`.
    assert!(
        err.message().ends_with("HTTP 403: permission denied"),
        "{:?}",
        err.message()
    );
    assert!(err.proves_not_applied());
    assert_one_line(&err);
}
