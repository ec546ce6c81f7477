//! What the fuzz targets share: the planted secrets and the leak checks, a runtime, and a
//! scripted HTTP peer that answers a backend's requests with the fuzzer's responses.
//!
//! Targets read text inputs (easy to seed by hand, easy for libFuzzer to mutate). An input
//! names secrets with the placeholders `$SECRET` and `$TOKEN`; [`plant`] swaps in the two
//! canaries, and every error, `Debug` and `Display` the code under test produces is checked
//! for them. A canary that the input itself puts in a position the code may legitimately
//! echo (a Vault `errors` string, a key name) makes the check for that canary moot, and the
//! targets skip it for that input rather than report a false leak.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

/// The canary secret value an input's `$SECRET` becomes.
pub const SECRET: &str = "Cnry5ecretVal7q";
/// The canary credential (token, secret id, secret access key) an input's `$TOKEN` becomes.
pub const TOKEN: &str = "Cnry7okenQx93z";

/// `text` with the placeholders replaced by the canaries.
pub fn plant(text: &str) -> String {
    text.replace("$SECRET", SECRET).replace("$TOKEN", TOKEN)
}

/// Panics (a finding) if `text` holds `canary`.
pub fn assert_clean(what: &str, text: &str, canary: &str) {
    assert!(
        !text.contains(canary),
        "{what} leaks a planted secret ({canary}): {text}"
    );
}

/// Checks the `Display`, `Debug` and every source of `error` for `canaries`.
pub fn assert_error_clean(error: &(dyn std::error::Error + 'static), canaries: &[&str]) {
    let mut text = String::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = next {
        let _ = write!(text, "{e} | {e:?} | ");
        next = e.source();
    }
    for canary in canaries {
        assert_clean("an error", &text, canary);
    }
}

/// Where `canary` sits in a JSON body: under one of `secret_keys` (anywhere in the tree), or
/// elsewhere (any other string, a key, or a body that is not JSON at all).
#[derive(Clone, Copy, Debug, Default)]
pub struct Placement {
    /// Some string under a secret-shaped key holds the canary.
    pub secret: bool,
    /// The canary is somewhere the code may legitimately echo.
    pub elsewhere: bool,
}

impl Placement {
    /// Whether errors must be free of the canary: it was planted only as a secret, or not at
    /// all (then finding it in an error means the code invented it: also a leak of a
    /// configured credential).
    pub fn must_hide(self) -> bool {
        !self.elsewhere
    }

    /// Both placements together.
    pub fn or(self, other: Self) -> Self {
        Self {
            secret: self.secret || other.secret,
            elsewhere: self.elsewhere || other.elsewhere,
        }
    }
}

/// Where `canary` sits in `body` (see [`Placement`]).
pub fn placement(body: &[u8], canary: &str, secret_keys: &[&str]) -> Placement {
    let text = String::from_utf8_lossy(body);
    if !text.contains(canary) {
        return Placement::default();
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Placement {
            secret: false,
            elsewhere: true,
        };
    };
    let mut out = Placement::default();
    walk(&value, false, canary, secret_keys, &mut out);
    out
}

fn walk(value: &Value, secret: bool, canary: &str, keys: &[&str], out: &mut Placement) {
    match value {
        Value::String(s) if s.contains(canary) => {
            if secret {
                out.secret = true;
            } else {
                out.elsewhere = true;
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| walk(v, secret, canary, keys, out)),
        Value::Object(map) => {
            for (k, v) in map {
                if k.contains(canary) {
                    out.elsewhere = true;
                }
                walk(v, secret || keys.contains(&k.as_str()), canary, keys, out);
            }
        }
        _ => {}
    }
}

/// The runtime every async target runs on (one worker: a fuzz process is one thread of work).
pub fn runtime() -> &'static Runtime {
    static RT: LazyLock<Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    });
    &RT
}

/// One scripted HTTP answer.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The status (clamped to 200–599: a 1xx makes the client wait for a final answer).
    pub status: u16,
    /// Extra headers (names and values already valid).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// Parses one script line `STATUS [Header-Name:value ]BODY`: a status, a space, optional
    /// `name:value` header words each followed by a space (a name of letters and `-`), then
    /// the body, placeholders planted. A line without a leading status is a 200 with the
    /// whole line as its body.
    pub fn parse(line: &str) -> Self {
        let (status, mut rest) = match line.split_once(' ') {
            Some((s, rest)) if s.parse::<u16>().is_ok() => (s.parse::<u16>().unwrap_or(200), rest),
            _ => (200, line),
        };
        let mut headers = Vec::new();
        while let Some((word, tail)) = rest.split_once(' ') {
            let Some((name, value)) = word.split_once(':') else {
                break;
            };
            let name_ok =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-');
            let value_ok = value.bytes().all(|b| b.is_ascii_graphic());
            if !name_ok || !value_ok || name.starts_with('{') {
                break;
            }
            headers.push((name.to_owned(), plant(value)));
            rest = tail;
        }
        Self {
            status: status.clamp(200, 599),
            headers,
            body: plant(rest).into_bytes(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} Scripted\r\ncontent-length: {}\r\nconnection: close\r\ncontent-type: application/json\r\n",
            self.status,
            self.body.len()
        );
        for (k, v) in &self.headers {
            let _ = write!(head, "{k}: {v}\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// A local HTTP server that answers each request with the next scripted [`Reply`] (a 503
/// once the script is used up) and closes the connection.
pub struct Scripted {
    addr: SocketAddr,
    queue: Arc<Mutex<VecDeque<Reply>>>,
}

impl Scripted {
    /// The process's server, started on first use on [`runtime`].
    pub fn get() -> &'static Self {
        static SERVER: LazyLock<Scripted> = LazyLock::new(Scripted::start);
        &SERVER
    }

    fn start() -> Self {
        let queue: Arc<Mutex<VecDeque<Reply>>> = Arc::default();
        let listener = runtime()
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("the bound address");
        let q = queue.clone();
        runtime().spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    continue;
                };
                let q = q.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // The head, then as much body as it announces (bounded).
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        if buf.len() > 1 << 20 {
                            return;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let want = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0)
                        .min(1 << 20);
                    while buf.len() < head_end + want {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let reply = q.lock().expect("queue lock").pop_front().unwrap_or(Reply {
                        status: 503,
                        headers: Vec::new(),
                        body: br#"{"errors":["the script is used up"]}"#.to_vec(),
                    });
                    let _ = conn.write_all(&reply.bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Self { addr, queue }
    }

    /// Replaces the script.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        let mut q = self.queue.lock().expect("queue lock");
        q.clear();
        q.extend(replies);
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Splits a target's text input into its first line (options) and the rest (lines).
pub fn header_and_lines(data: &[u8]) -> Option<(String, Vec<String>)> {
    let text = std::str::from_utf8(data).ok()?;
    let mut lines = text.lines();
    let header = lines.next()?.to_owned();
    Some((header, lines.map(str::to_owned).collect()))
}

/// The configuration options that hold a credential (a `SecretRef`), by their last key.
pub const SECRET_OPTIONS: [&str; 8] = [
    "token",
    "role_id",
    "secret_id",
    "client_key",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "master_key",
];

fn is_secret_option(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    SECRET_OPTIONS.contains(&last)
}

/// Where `canary` sits in a store URI: in the userinfo or the value of a credential option
/// (`auth.token=…`) is secret; anywhere else (scheme, host, path, another option, a key, the
/// fragment) the code may echo it.
pub fn uri_placement(uri: &str, canary: &str) -> Placement {
    let mut out = Placement::default();
    if !uri.contains(canary) {
        return out;
    }
    let after_scheme = uri.find("://").map_or(0, |i| i + 3);
    let rest = &uri[after_scheme..];
    let auth_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let userinfo_end = rest[..auth_len].rfind('@').map(|i| after_scheme + i);
    let query_start = uri.find('?').map(|i| i + 1);
    let fragment_start = uri.find('#');
    // Secret byte ranges: the userinfo, and credential option values.
    let mut secret: Vec<(usize, usize)> = Vec::new();
    if let Some(end) = userinfo_end {
        secret.push((after_scheme, end));
    }
    if let Some(q) = query_start.filter(|q| fragment_start.is_none_or(|f| *q <= f)) {
        let end = fragment_start.unwrap_or(uri.len());
        let mut at = q;
        for piece in uri[q..end].split('&') {
            if let Some((k, _)) = piece.split_once('=') {
                if is_secret_option(k) && !k.contains(canary) {
                    secret.push((at + k.len() + 1, at + piece.len()));
                }
            }
            at += piece.len() + 1;
        }
    }
    for (i, _) in uri.match_indices(canary) {
        if secret.iter().any(|&(s, e)| s <= i && i + canary.len() <= e) {
            out.secret = true;
        } else {
            out.elsewhere = true;
        }
    }
    out
}

/// Where `canary` sits in a TOML configuration: in a credential option's value (or a `uri`
/// value's credential position) is secret; anywhere else the code may echo it. Text that is
/// not TOML: a canary after the line's `=` counts as a value (the parser's errors quote no
/// value), before it as a key.
pub fn toml_placement(text: &str, canary: &str) -> Placement {
    let mut out = Placement::default();
    if !text.contains(canary) {
        return out;
    }
    match text.parse::<toml::Table>() {
        Ok(table) => toml_walk(&toml::Value::Table(table), "", canary, &mut out),
        Err(_) => {
            for line in text.lines() {
                for (i, _) in line.match_indices(canary) {
                    match line.find('=') {
                        Some(eq) if eq < i => out.secret = true,
                        _ => out.elsewhere = true,
                    }
                }
            }
            // A canary split over lines by a multi-line string is not on any one line.
            if text.matches(canary).count()
                != text
                    .lines()
                    .map(|l| l.matches(canary).count())
                    .sum::<usize>()
            {
                out.elsewhere = true;
            }
        }
    }
    out
}

fn toml_walk(value: &toml::Value, key: &str, canary: &str, out: &mut Placement) {
    match value {
        toml::Value::String(s) if s.contains(canary) => {
            if key == "uri" {
                *out = out.or(uri_placement(s, canary));
            } else if is_secret_option(key) {
                out.secret = true;
            } else {
                out.elsewhere = true;
            }
        }
        toml::Value::Array(items) => items.iter().for_each(|v| toml_walk(v, key, canary, out)),
        toml::Value::Table(t) => {
            for (k, v) in t {
                if k.contains(canary) {
                    out.elsewhere = true;
                }
                toml_walk(v, k, canary, out);
            }
        }
        _ => {}
    }
}

/// Where `canary` sits in environment overrides: the value of a credential option
/// (`KMS_STORES__A__VAULT__AUTH__TOKEN`) or a `…__URI` value's credential position is
/// secret; names and other values the code may echo.
pub fn env_placement(vars: &[(String, String)], canary: &str) -> Placement {
    let mut out = Placement::default();
    for (name, value) in vars {
        if name.contains(canary) {
            out.elsewhere = true;
        }
        if !value.contains(canary) {
            continue;
        }
        let last = name.rsplit("__").next().unwrap_or("").to_ascii_lowercase();
        if name.starts_with("KMS_STORES__") && last == "uri" {
            out = out.or(uri_placement(value, canary));
        } else if name.starts_with("KMS_STORES__") && SECRET_OPTIONS.contains(&last.as_str()) {
            out.secret = true;
        } else {
            out.elsewhere = true;
        }
    }
    out
}
