//! Helpers: an agent in this process (configuration in a temporary directory, the token given
//! through an injected environment), a plain HTTP/1 client over TCP or a Unix socket, the
//! real peers' configuration, and a TCP proxy that holds connections until released.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use kms::KeyStore;
use kms_agent::Agent;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::sync::watch;

/// The token the test agents accept.
pub const TOKEN: &str = "test-token-7f3a9c";

/// A TCP listener on a free loopback port.
pub const TCP0: &str = "\n[agent.tcp]\naddress = \"127.0.0.1:0\"\n";

/// A unique suffix for names on shared peers.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

/// An answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Where to send a request.
#[derive(Clone, Debug)]
pub enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

async fn send_on<IO>(io: IO, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = sender
        .send_request(req.body(Empty::<Bytes>::new()).unwrap())
        .await
        .expect("response");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

/// One request on a new connection.
pub async fn send(target: &Target, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    match target {
        Target::Tcp(addr) => {
            let s = TcpStream::connect(addr).await.expect("connect");
            send_on(TokioIo::new(s), method, path, headers).await
        }
        Target::Unix(p) => {
            let s = UnixStream::connect(p).await.expect("connect");
            send_on(TokioIo::new(s), method, path, headers).await
        }
    }
}

/// The AWS agent's header with the test token.
pub fn aws_token() -> [(&'static str, &'static str); 1] {
    [("X-Aws-Parameters-Secrets-Token", TOKEN)]
}

/// An agent running in this process.
pub struct TestAgent {
    pub agent: Option<Agent>,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

/// The injected environment: the token in `AWS_TOKEN`.
pub fn env_with_token(value: &str) -> kms_agent::live::EnvLookup {
    let map: HashMap<String, String> = [("AWS_TOKEN".to_owned(), value.to_owned())].into();
    Arc::new(move |k: &str| map.get(k).cloned())
}

impl TestAgent {
    pub async fn start(config: &str) -> Self {
        Self::try_start(config)
            .await
            .unwrap_or_else(|e| panic!("agent: {e}"))
    }

    pub async fn try_start(config: &str) -> kms::Result<Self> {
        Self::try_start_with_env(config, env_with_token(TOKEN)).await
    }

    pub async fn try_start_with_env(
        config: &str,
        env: kms_agent::live::EnvLookup,
    ) -> kms::Result<Self> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, config).unwrap();
        let agent = Agent::start_with_env(&path, env).await?;
        Ok(Self {
            agent: Some(agent),
            dir,
            config: path,
        })
    }

    pub fn agent(&self) -> &Agent {
        self.agent.as_ref().unwrap()
    }

    pub fn target(&self) -> Target {
        Target::Tcp(self.agent().tcp_addr().expect("a TCP listener"))
    }

    /// GET with the AWS token header.
    pub async fn get(&self, path: &str) -> Reply {
        send(&self.target(), "GET", path, &aws_token()).await
    }

    /// A request with exactly these headers.
    pub async fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        send(&self.target(), method, path, headers).await
    }

    /// The store `name` of the current configuration (to seed it).
    pub fn store(&self, name: &str) -> Arc<dyn KeyStore> {
        self.agent()
            .live()
            .snapshot()
            .store(name)
            .expect("store")
            .store()
            .clone()
    }

    /// The OpenMetrics text of the agent's registry.
    pub fn metrics(&self) -> String {
        self.agent().live().registry().encode()
    }

    pub fn rewrite(&self, config: &str) {
        std::fs::write(&self.config, config).unwrap();
    }

    pub async fn stop(mut self) -> bool {
        self.agent.take().unwrap().shutdown().await
    }
}

/// Polls `f` until it is true (at most 15 s; a failure, never a measure of speed).
pub async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..300 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened: {what}");
}

/// The OpenBao dev server.
pub fn vault_addr() -> String {
    std::env::var("KMS_TEST_VAULT_ADDR").expect(
        "KMS_TEST_VAULT_ADDR is not set: start the peers (scripts/test) or `source /tmp/peers.env`",
    )
}

/// A Vault store table under a fresh prefix (`address` overridable, for the proxy).
pub fn vault_store(name: &str, prefix: &str, address: &str, extra: &str) -> String {
    assert!(
        std::env::var_os("KMS_TEST_VAULT_TOKEN").is_some(),
        "KMS_TEST_VAULT_TOKEN is not set"
    );
    format!(
        r#"
[stores.{name}.vault]
address = "{address}"
prefix = "{prefix}"
request_timeout = "10s"
auth.token = "env:KMS_TEST_VAULT_TOKEN"
{extra}
"#
    )
}

/// moto.
pub fn aws_endpoint() -> String {
    std::env::var("KMS_TEST_AWS_ENDPOINT").expect(
        "KMS_TEST_AWS_ENDPOINT is not set: start the peers (scripts/test) or `source /tmp/peers.env`",
    )
}

/// An AWS Secrets Manager store table on moto under a fresh namespace.
pub fn aws_store(name: &str, namespace: &str, extra: &str) -> String {
    format!(
        r#"
[stores.{name}.aws]
region = "us-east-1"
endpoint_url = "{}"
access_key_id = "testing"
secret_access_key = "testing"
namespace = "{namespace}"
deletion = "force"
connect_timeout = "2s"
operation_timeout = "10s"
{extra}
"#,
        aws_endpoint()
    )
}

/// A store opened beside the agent's, on the same backend (to write behind its cache).
pub async fn open_beside(config_text: &str, name: &str) -> Arc<dyn KeyStore> {
    kms::Config::from_toml_str(config_text)
        .expect("parses")
        .open(name)
        .await
        .expect("opens")
}

/// A TCP proxy that holds every connection until [`Proxy::release`] (then forwards).
pub struct Proxy {
    pub addr: SocketAddr,
    open: watch::Sender<bool>,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Self {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .parse()
            .expect("an http://IP:port upstream");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (open, rx) = watch::channel(false);
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    let _ = rx.wait_for(|open| *open).await;
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                    let _ = client.shutdown().await;
                });
            }
        });
        Self {
            addr,
            open,
            accepted,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn release(&self) {
        let _ = self.open.send(true);
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Writes `text` to `dir/name`, returning the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}
