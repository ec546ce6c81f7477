//! A minimal HTTP/1.1 server on 127.0.0.1 for the effect tests: one request per connection
//! (`Connection: close`), every request recorded, the answer made by a handler. Enough for
//! reqwest and the AWS SDK; not a general server.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The path without the query.
    pub path: String,
    pub query: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What the handler answers: a status, headers and a body; or nothing (the connection is
/// closed without an answer).
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// A whole HTTP response, written as it is (a proxy's answer).
    pub raw: Option<Vec<u8>>,
}

impl Response {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
            raw: None,
        }
    }

    /// A response passed on as it came.
    pub fn raw(bytes: Vec<u8>) -> Self {
        Self {
            status: 0,
            headers: Vec::new(),
            body: Vec::new(),
            raw: Some(bytes),
        }
    }
}

/// Forwards `r` to the server at `upstream` (`127.0.0.1:5000`) and returns its answer as it
/// came (blocking: for tests, against a local server).
pub fn forward(upstream: &str, r: &Request) -> Option<Response> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(upstream).ok()?;
    let mut head = format!("{} {}", r.method, r.path);
    if !r.query.is_empty() {
        head.push('?');
        head.push_str(&r.query);
    }
    head.push_str(" HTTP/1.1\r\n");
    for (n, v) in &r.headers {
        if n != "connection" {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
    }
    head.push_str("connection: close\r\n\r\n");
    conn.write_all(head.as_bytes()).ok()?;
    conn.write_all(&r.body).ok()?;
    let mut out = Vec::new();
    conn.read_to_end(&mut out).ok()?;
    Some(Response::raw(out))
}

/// How the server misbehaves, for every request from now on.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Answer every request with this status (and Vault's `errors` body).
    pub status: Option<u16>,
    /// Wait this long before answering.
    pub delay: Option<Duration>,
    /// Only for requests whose path contains this (all when `None`).
    pub only_path: Option<String>,
    /// Only the next this many matching requests (all when `None`).
    pub times: Option<usize>,
}

pub type Handler = Arc<dyn Fn(&Request) -> Option<Response> + Send + Sync>;

/// A running server.
#[derive(Clone)]
pub struct Server {
    pub addr: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    faults: Arc<Mutex<Faults>>,
}

impl Server {
    /// Starts a server answering with `handler` (on the current Tokio runtime).
    pub async fn start(handler: Handler) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = Self {
            addr: listener.local_addr().unwrap(),
            requests: Arc::default(),
            faults: Arc::default(),
        };
        let s = server.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (s, handler) = (s.clone(), handler.clone());
                tokio::spawn(async move {
                    let _ = s.serve(conn, &handler).await;
                });
            }
        });
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT`.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().clone()
    }

    pub fn clear(&self) {
        self.requests.lock().clear();
    }

    /// How many requests have a path containing `part`.
    pub fn count(&self, part: &str) -> usize {
        self.requests
            .lock()
            .iter()
            .filter(|r| r.path.contains(part))
            .count()
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.faults.lock() = faults;
    }

    /// Every request fails with `status` from now on (an outage), or none with `None`.
    pub fn fail_with(&self, status: Option<u16>) {
        self.set_faults(Faults {
            status,
            ..Faults::default()
        });
    }

    async fn serve(&self, mut conn: TcpStream, handler: &Handler) -> std::io::Result<()> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or_default().split(' ');
        let method = first.next().unwrap_or_default().to_owned();
        let target = first.next().unwrap_or_default();
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < len {
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        let request = Request {
            method,
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
            body,
        };
        self.requests.lock().push(request.clone());
        let fault = {
            let mut f = self.faults.lock();
            let applies = f
                .only_path
                .as_ref()
                .is_none_or(|p| request.path.contains(p.as_str()))
                && f.times != Some(0);
            if applies {
                if let Some(t) = &mut f.times {
                    *t -= 1;
                }
                Some((f.status, f.delay))
            } else {
                None
            }
        };
        let mut response = None;
        if let Some((status, delay)) = fault {
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            if let Some(status) = status {
                response = Some(Response::json(
                    status,
                    serde_json::json!({ "errors": ["injected failure"] }),
                ));
            }
        }
        let Some(response) = response.or_else(|| handler(&request)) else {
            return Ok(());
        };
        if let Some(raw) = &response.raw {
            conn.write_all(raw).await?;
            return conn.shutdown().await;
        }
        let mut out = format!("HTTP/1.1 {} X\r\n", response.status);
        for (n, v) in &response.headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            response.body.len()
        ));
        conn.write_all(out.as_bytes()).await?;
        conn.write_all(&response.body).await?;
        conn.shutdown().await
    }
}
