//! [`VaultClient`]: the HTTP client every Vault request goes through.
//!
//! This file holds the client type and the request-sending leaf: [`VaultClient::call`] (an
//! authenticated request: lazy connect, then one re-login and one resend after a rejected
//! token) over [`Inner::send`] (one HTTP exchange: token and namespace headers, Vault's
//! answer or error body read into a [`Failure`]). The children add methods to these types:
//!
//! - `denial`: what a 403 says (a rejected token, or a policy denial);
//! - `login`: connecting, logging in, and logging in again after a rejection;
//! - `renew`: background token renewal;
//! - `health`: `sys/health`;
//! - `probe`: background `sys/health` probes of a cluster's nodes;
//! - `nodes` (a leaf): a cluster's nodes, their state and the order requests try them in;
//! - `consistency` (a leaf): the newest `X-Vault-Index` seen, sent on reads.
//!
//! # A cluster
//!
//! Given several node addresses, [`Inner::send`] routes each request: reads go to any
//! serving node (rotating), carrying the newest `X-Vault-Index` this client has seen, so a
//! node that is behind forwards them to the active node; writes go to the node last probed
//! active (standbys forward them too). A node that refuses the connection is skipped at
//! once; one that times out is skipped for reads (a write that timed out may have been
//! applied, so it is not sent again elsewhere); both are marked down and skipped by later
//! requests until the background probe finds them serving again. A read that no node could
//! serve (during an election, every standby behind this client's index redirects to the
//! active node that died) is tried again, round after round, for up to the consistency
//! wait, rather than answered with older state.

mod consistency;
mod denial;
mod health;
mod login;
mod nodes;
mod probe;
mod renew;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kms_core::{Error, ErrorKind, Result};
use parking_lot::RwLock;
use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::OnceCell;
use tokio::task::AbortHandle;

use self::consistency::{ConsistencyIndex, FORWARD_ACTIVE_NODE, INCONSISTENT_HEADER, INDEX_HEADER};
pub(crate) use self::nodes::{Node, Nodes};
use crate::BACKEND;
use crate::auth::VaultAuth;
use crate::error_map::{Failure, STANDBY_BEFORE_FORWARDING, to_error};

/// The header carrying the token.
const TOKEN_HEADER: &str = "X-Vault-Token";
/// The pause between two rounds of a read over a cluster that no node could serve yet.
const ROUND_PAUSE: Duration = Duration::from_millis(100);
/// The header selecting a namespace (Vault Enterprise, OpenBao).
const NAMESPACE_HEADER: &str = "X-Vault-Namespace";

/// A Vault/OpenBao API client shared by [`VaultStore`](crate::VaultStore) and
/// [`VaultTransitProvider`](crate::VaultTransitProvider). Cheap to clone.
///
/// - Every request sends the current token and the namespace header (none for the root
///   namespace).
/// - A 403 is classified by what Vault says (see the crate docs, "Auth and tokens"): a policy
///   denial is [`ErrorKind::PermissionDenied`] at once and never costs a login; a rejected
///   (expired, revoked) token is [`ErrorKind::Unauthenticated`] for a fixed token, and for
///   AppRole/Kubernetes makes concurrent callers share exactly one re-login, after which the
///   request is sent once more. Logins caused by rejections are at most one per token and
///   at most one per
///   [`min_relogin_interval`](crate::VaultClientBuilder::min_relogin_interval).
/// - A renewable token is renewed in the background when `renew_fraction` of its lease has
///   passed; if renewal fails (or the lease can no longer grow), the client logs in again.
///   The task stops when the last clone of the client is dropped.
#[derive(Clone)]
pub struct VaultClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultClient")
            .field("address", &self.inner.address)
            .field(
                "nodes",
                &self
                    .inner
                    .nodes
                    .all()
                    .iter()
                    .map(|n| (n.address.as_str(), n.state_label()))
                    .collect::<Vec<_>>(),
            )
            .field("namespace", &self.inner.namespace)
            .field("auth", &self.inner.auth)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

/// What every clone of a [`VaultClient`] shares.
struct Inner {
    http: reqwest::Client,
    /// The node or nodes (one address is a cluster of one).
    nodes: Nodes,
    /// The newest `X-Vault-Index` seen, sent on reads.
    index: ConsistencyIndex,
    /// The address(es) as shown in messages (no user info, no `/v1`; a cluster's joined
    /// with `, `).
    address: String,
    /// How often a cluster's nodes are probed in the background.
    probe_interval: Duration,
    /// The per-request timeout (one attempt on one node).
    timeout: Duration,
    /// How long a read over a cluster waits for a node that can serve it.
    consistency_wait: Duration,
    namespace: Option<String>,
    auth: VaultAuth,
    token: RwLock<Token>,
    /// Held while a token is checked or replaced after a rejection (single flight).
    login_lock: tokio::sync::Mutex<LoginState>,
    /// Set once the first login / token lookup succeeded (lazy connect).
    connected: OnceCell<()>,
    renew_fraction: f64,
    min_relogin_interval: Duration,
    renewer: parking_lot::Mutex<Option<AbortHandle>>,
    prober: parking_lot::Mutex<Option<AbortHandle>>,
}

/// What the login lock guards.
#[derive(Default)]
struct LoginState {
    /// When the last login caused by a rejected token happened.
    last_forced: Option<Instant>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self.renewer.get_mut().take() {
            task.abort();
        }
        if let Some(task) = self.prober.get_mut().take() {
            task.abort();
        }
    }
}

/// The current token and what Vault said about it.
#[derive(Clone)]
struct Token {
    secret: SecretString,
    accessor: Option<String>,
    lease: Duration,
    renewable: bool,
    /// Bumped by every login, so concurrent 403s re-login once.
    generation: u64,
}

/// What to do after a 403.
enum Verdict {
    /// A new token is installed: send the request again.
    Retry,
    /// A policy denial: `PermissionDenied`.
    Denied,
}

/// An [`ErrorKind::Configuration`] error if there is no Tokio runtime on this thread (the
/// HTTP stack would panic without one).
pub(crate) fn require_runtime(what: &str) -> Result<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Configuration,
        format!(
            "{what} needs a Tokio runtime (the HTTP client runs on it): call it inside \
             #[tokio::main], a #[tokio::test], or Runtime::block_on"
        ),
    )
    .with_backend(BACKEND))
}

impl VaultClient {
    /// The client over checked settings (what [`VaultClientBuilder`](crate::VaultClientBuilder)
    /// builds); no I/O.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        http: reqwest::Client,
        nodes: Vec<Node>,
        namespace: Option<String>,
        auth: VaultAuth,
        renew_fraction: f64,
        min_relogin_interval: Duration,
        timeout: Duration,
        probe_interval: Duration,
        consistency_wait: Duration,
    ) -> Self {
        let address = nodes
            .iter()
            .map(|n| n.address.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let secret = match &auth {
            VaultAuth::Token(token) => token.clone(),
            _ => SecretString::from(String::new()),
        };
        Self {
            inner: Arc::new(Inner {
                http,
                nodes: Nodes::new(nodes),
                index: ConsistencyIndex::default(),
                address,
                probe_interval,
                timeout,
                consistency_wait,
                namespace,
                auth,
                token: RwLock::new(Token {
                    secret,
                    accessor: None,
                    lease: Duration::ZERO,
                    renewable: false,
                    generation: 0,
                }),
                login_lock: tokio::sync::Mutex::new(LoginState::default()),
                connected: OnceCell::new(),
                renew_fraction,
                min_relogin_interval,
                renewer: parking_lot::Mutex::new(None),
                prober: parking_lot::Mutex::new(None),
            }),
        }
    }

    /// The server address as configured (without user info or `/v1`); for a cluster, the
    /// first node's.
    pub fn address(&self) -> &str {
        &self.inner.nodes.all()[0].address
    }

    /// Every node address as configured (one for a single server), in order.
    pub fn addresses(&self) -> Vec<String> {
        self.inner
            .nodes
            .all()
            .iter()
            .map(|n| n.address.clone())
            .collect()
    }

    /// The node the last health probe or request found active, if known (a cluster's
    /// background probe keeps it current; a single server's is unknown until
    /// [`health`](Self::health) runs).
    pub fn active_address(&self) -> Option<String> {
        self.inner
            .nodes
            .all()
            .iter()
            .find(|n| n.is_active())
            .map(|n| n.address.clone())
    }

    /// The nodes currently skipped because a request or probe found them not serving
    /// (refused, timed out, sealed); empty when all serve.
    pub fn skipped_addresses(&self) -> Vec<String> {
        self.inner
            .nodes
            .all()
            .iter()
            .filter(|n| n.is_down())
            .map(|n| n.address.clone())
            .collect()
    }

    /// The newest storage index (`X-Vault-Index`) this client has seen, where the server
    /// encodes it as OpenBao does; reads carry it so no node answers with older state.
    pub fn consistency_index(&self) -> Option<u64> {
        self.inner.index.value()
    }

    /// The namespace header sent, in its canonical form (`None`: the root namespace).
    pub fn namespace(&self) -> Option<&str> {
        self.inner.namespace.as_deref()
    }

    /// The accessor of the current token (not a secret: it can look up and revoke the token
    /// but not use it), for audit logs and revocation.
    pub fn token_accessor(&self) -> Option<String> {
        self.inner.token.read().accessor.clone()
    }

    /// How many times the client has logged in (1 after an AppRole/Kubernetes build; 0 for a
    /// fixed token).
    pub fn logins(&self) -> u64 {
        self.inner.token.read().generation
    }

    /// Sends `method path` with an optional JSON body and returns the JSON answer (`None` for
    /// 204). `what` names the request in errors. Connects first (lazy mode), handles 403s
    /// (see the type docs) and maps errors.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        what: &str,
    ) -> Result<Option<Value>> {
        if !self.inner.connected.initialized() {
            // The request is sent only once connected: a failed connect changed nothing.
            self.connect().await.map_err(Error::not_applied)?;
        } else {
            require_runtime("VaultClient")?;
        }
        let seen = self.inner.token.read().generation;
        let errors = match self.inner.send(&method, path, query, body).await {
            Err(Failure::Status {
                status: 403,
                errors,
            }) => errors,
            other => return other.map_err(|f| to_error(f, what)),
        };
        match self.inner.after_403(seen, &errors, true).await {
            Ok(Verdict::Retry) => {}
            Ok(Verdict::Denied) => return Err(denied(&errors, what)),
            Err(e) => return Err(prefixed(e, what)),
        }
        let errors = match self.inner.send(&method, path, query, body).await {
            Err(Failure::Status {
                status: 403,
                errors,
            }) => errors,
            other => return other.map_err(|f| to_error(f, what)),
        };
        // The token is fresh: classify this 403 without logging in again.
        let seen = self.inner.token.read().generation;
        match self.inner.after_403(seen, &errors, false).await {
            Ok(_) => Err(denied(&errors, what)),
            Err(e) => Err(prefixed(e, what)),
        }
    }
}

/// A policy denial.
fn denied(errors: &[String], what: &str) -> Error {
    to_error(
        Failure::Status {
            status: 403,
            errors: errors.to_vec(),
        },
        what,
    )
}

/// `e`, a failure to log in again after Vault answered the request with a 403, with the
/// request named first. Vault refused the request and it was not sent again, so nothing of it
/// was applied, whatever the login failed with.
fn prefixed(e: Error, what: &str) -> Error {
    let mut out = Error::new(e.kind(), format!("{what}: {}", e.message())).with_backend(BACKEND);
    if let Some(code) = e.code() {
        out = out.with_code(code.to_owned());
    }
    out.not_applied()
}

impl Inner {
    fn url(&self, node: &Node, path: &str) -> Url {
        let mut url = node.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.extend(path.split('/').filter(|s| !s.is_empty()));
        }
        url
    }

    fn transport(&self, node: &Node, error: reqwest::Error) -> Failure {
        Failure::Transport {
            error,
            address: node.address.clone(),
        }
    }

    /// One request, routed over the cluster's nodes (see the module docs): the JSON answer
    /// (`None` for 204 or an empty body), or the failure as Vault's status and error body
    /// describe it. With one node, exactly one exchange.
    async fn send(
        &self,
        method: &Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> std::result::Result<Option<Value>, Failure> {
        let read = *method == Method::GET || method.as_str() == "LIST";
        let cluster = self.nodes.is_cluster();
        // A read no node could serve yet (every standby behind this client's index while the
        // active node is being elected) is tried again until this deadline.
        let deadline = (read && cluster).then(|| Instant::now() + self.consistency_wait);
        let mut round = 0;
        loop {
            let mut last = None;
            for i in self.nodes.order(read) {
                let node = &self.nodes.all()[i];
                if round > 0 && node.is_down() {
                    continue;
                }
                // Marks the node down if this future is dropped mid-request (a caller's
                // timeout above this client): a node that hangs is skipped by the next request.
                let mut abandoned = Abandoned {
                    node: cluster.then_some(node),
                };
                let result = self.send_to(node, method, path, query, body, read).await;
                abandoned.node = None;
                match result {
                    Ok(answer) => {
                        node.mark_answered();
                        return Ok(answer);
                    }
                    Err(Failure::Transport { error, address }) if cluster => {
                        node.mark_down();
                        tracing::warn!(
                            backend = BACKEND,
                            node = %address,
                            timeout = error.is_timeout(),
                            "Vault node did not answer; skipping it until a probe finds it serving"
                        );
                        // A write that may have been sent (timed out, reset) is not sent
                        // again: it may have been applied.
                        let resend = read || error.is_connect();
                        let failure = Failure::Transport { error, address };
                        if !resend {
                            return Err(failure);
                        }
                        last = Some(failure);
                    }
                    Err(Failure::Status { status, errors })
                        if cluster && node_cannot_serve(status, &errors, read) =>
                    {
                        if status == 503 {
                            node.mark_down();
                        }
                        last = Some(Failure::Status { status, errors });
                    }
                    Err(other) => return Err(other),
                }
            }
            match deadline {
                Some(at) if Instant::now() + ROUND_PAUSE < at => {
                    tokio::time::sleep(ROUND_PAUSE).await;
                    round += 1;
                }
                _ => {
                    return Err(last
                        .unwrap_or_else(|| Failure::Malformed("no Vault node to send to".into())));
                }
            }
        }
    }

    /// One HTTP exchange with `node` and the current token: reads carry the newest
    /// `X-Vault-Index`, and every answer's index is kept.
    async fn send_to(
        &self,
        node: &Node,
        method: &Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        read: bool,
    ) -> std::result::Result<Option<Value>, Failure> {
        let mut url = self.url(node, path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut req = self.http.request(method.clone(), url);
        {
            let token = self.token.read();
            if !token.secret.expose_secret().is_empty() {
                req = req.header(TOKEN_HEADER, token.secret.expose_secret());
            }
        }
        if let Some(ns) = &self.namespace {
            req = req.header(NAMESPACE_HEADER, ns);
        }
        if read && let Some(index) = self.index.current() {
            req = req
                .header(INDEX_HEADER, index)
                .header(INCONSISTENT_HEADER, FORWARD_ACTIVE_NODE);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| self.transport(node, e))?;
        if let Some(index) = resp
            .headers()
            .get(INDEX_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            self.index.observe(index);
        }
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| self.transport(node, e))?;
        if (200..300).contains(&status) {
            if status == 204 || bytes.is_empty() {
                return Ok(None);
            }
            return serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Failure::Malformed(format!(
                    "malformed JSON response (line {}, column {})",
                    e.line(),
                    e.column()
                ))
            });
        }
        let Ok(answer) = serde_json::from_slice::<Value>(&bytes) else {
            if (400..500).contains(&status) && status != 429 && status != 412 {
                // Vault answers every 4xx with JSON; this is another server.
                let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).to_lowercase();
                let hint = if text.contains("http request to an https server") {
                    format!(
                        "{} answered HTTP {status}: the server speaks HTTPS; use an https:// address",
                        node.address
                    )
                } else {
                    format!(
                        "{} answered HTTP {status} without Vault's JSON error body: not a Vault \
                         server, or a wrong address or path",
                        node.address
                    )
                };
                return Err(Failure::NotVault(hint));
            }
            return Err(Failure::Status {
                status,
                errors: Vec::new(),
            });
        };
        let strings = |field: &str| -> Vec<String> {
            answer
                .get(field)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut errors = strings("errors");
        if status == 404 && errors.iter().any(|e| e.contains("namespace not found")) {
            // Not the key's absence: the whole namespace is wrong.
            return Err(Failure::NotVault(format!(
                "{} has no namespace {:?} (check the namespace setting or VAULT_NAMESPACE)",
                node.address,
                self.namespace.as_deref().unwrap_or("")
            )));
        }
        if errors.is_empty() {
            // e.g. 404 "Invalid path for a versioned K/V secrets engine".
            errors = strings("warnings");
        }
        Err(Failure::Status { status, errors })
    }
}

/// Marks a node down when the request to it is abandoned (the future dropped) mid-flight.
struct Abandoned<'a> {
    node: Option<&'a Node>,
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        if let Some(node) = self.node {
            node.mark_down();
        }
    }
}

/// Whether an answer says this node cannot serve the request now, so the next node should
/// be tried: sealed (503), a standby with no active node to forward to (500, nothing
/// applied), and for reads any 5xx or a consistency refusal (a standby behind the index
/// that could not forward, 412, or OpenBao's bare 429) — reads change nothing, so sending
/// them elsewhere is safe.
fn node_cannot_serve(status: u16, errors: &[String], read: bool) -> bool {
    let sealed = status == 503 && errors.iter().any(|e| e.contains("Vault is sealed"));
    let no_active = status == 500 && errors.iter().any(|e| e.trim() == STANDBY_BEFORE_FORWARDING);
    // A standby that could not forward and redirects (307) to the active node it knows.
    let redirected = (300..400).contains(&status);
    if sealed || no_active || redirected {
        return true;
    }
    read && (matches!(status, 412 | 500 | 502 | 503 | 504) || (status == 429 && errors.is_empty()))
}
