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
//! - `health`: `sys/health`.

mod denial;
mod health;
mod login;
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

use crate::BACKEND;
use crate::auth::VaultAuth;
use crate::error_map::{Failure, to_error};

/// The header carrying the token.
const TOKEN_HEADER: &str = "X-Vault-Token";
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
            .field("namespace", &self.inner.namespace)
            .field("auth", &self.inner.auth)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

/// What every clone of a [`VaultClient`] shares.
struct Inner {
    http: reqwest::Client,
    base: Url,
    /// The address as shown in messages (no user info, no `/v1`).
    address: String,
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
    pub(crate) fn from_parts(
        http: reqwest::Client,
        base: Url,
        address: String,
        namespace: Option<String>,
        auth: VaultAuth,
        renew_fraction: f64,
        min_relogin_interval: Duration,
    ) -> Self {
        let secret = match &auth {
            VaultAuth::Token(token) => token.clone(),
            _ => SecretString::from(String::new()),
        };
        Self {
            inner: Arc::new(Inner {
                http,
                base,
                address,
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
            }),
        }
    }

    /// The server address as configured (without user info or `/v1`).
    pub fn address(&self) -> &str {
        &self.inner.address
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
    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.extend(path.split('/').filter(|s| !s.is_empty()));
        }
        url
    }

    fn transport(&self, error: reqwest::Error) -> Failure {
        Failure::Transport {
            error,
            address: self.address.clone(),
        }
    }

    /// One HTTP exchange with the current token: the JSON answer (`None` for 204 or an empty
    /// body), or the failure as Vault's status and error body describe it.
    async fn send(
        &self,
        method: &Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> std::result::Result<Option<Value>, Failure> {
        let mut url = self.url(path);
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
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| self.transport(e))?;
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
                        self.address
                    )
                } else {
                    format!(
                        "{} answered HTTP {status} without Vault's JSON error body: not a Vault \
                         server, or a wrong address or path",
                        self.address
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
                self.address,
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
