//! [`VaultClient`]: the HTTP client every Vault request goes through (auth header, namespace,
//! lazy connect, token classification and single-flight re-login on 403, background token
//! renewal, error mapping).

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use kms_core::{Error, ErrorKind, Result};
use parking_lot::RwLock;
use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::OnceCell;
use tokio::task::AbortHandle;

use crate::auth::VaultAuth;
use crate::builder::VaultClientBuilder;
use crate::error_map::{BACKEND, Denial, Failure, classify_403, to_error};

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
///   at most one per [`min_relogin_interval`](VaultClientBuilder::min_relogin_interval).
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

pub(crate) struct Inner {
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

#[derive(Default)]
struct LoginState {
    /// When the last login caused by a rejected token happened.
    last_forced: Option<Instant>,
}

/// Restores the rate-limit timestamp if a forced login is cancelled before it finishes.
struct ForcedLogin<'a> {
    state: &'a mut LoginState,
    previous: Option<Instant>,
    finished: bool,
}

impl Drop for ForcedLogin<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.state.last_forced = self.previous;
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self.renewer.get_mut().take() {
            task.abort();
        }
    }
}

#[derive(Clone)]
pub(crate) struct Token {
    pub(crate) secret: SecretString,
    pub(crate) accessor: Option<String>,
    pub(crate) lease: Duration,
    pub(crate) renewable: bool,
    /// Bumped by every login, so concurrent 403s re-login once.
    pub(crate) generation: u64,
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
    /// A builder for the server at `address` (`https://vault.example:8200`, without `/v1`).
    pub fn builder(address: impl Into<String>) -> VaultClientBuilder {
        VaultClientBuilder::new(address.into())
    }

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

    /// Connects now if not connected yet: logs in (AppRole, Kubernetes) or looks the token up
    /// (a fixed token), and starts background renewal. Concurrent callers share one attempt;
    /// a failed attempt is tried again by the next call. [`build`](VaultClientBuilder::build)
    /// calls it; a [lazy](VaultClientBuilder::build_lazy) client calls it on first use.
    ///
    /// # Errors
    ///
    /// As [`VaultClientBuilder::build`].
    pub async fn connect(&self) -> Result<()> {
        require_runtime("VaultClient")?;
        self.inner
            .connected
            .get_or_try_init(|| async {
                if self.inner.auth.can_login() {
                    self.inner.login().await?;
                } else {
                    self.inner.lookup_self_at_start().await?;
                }
                let task = tokio::spawn(crate::renew::renew_loop(Arc::downgrade(&self.inner)));
                *self.inner.renewer.lock() = Some(task.abort_handle());
                Ok::<(), Error>(())
            })
            .await
            .map(drop)
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

    /// `sys/health` of the server (unauthenticated, no namespace): `Ok` for an active node
    /// (200), a standby (429: it forwards requests to the active node) and a performance
    /// standby (473: it answers reads itself and forwards writes), since all three serve
    /// requests; sealed (503) and uninitialised (501) are [`ErrorKind::Unavailable`]. It says whether the server can serve,
    /// not whether this client's token or mount work: [`VaultStore`](crate::VaultStore)'s
    /// `health` checks those too.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`] as above or when unreachable (the message names the address
    /// and the cause), [`ErrorKind::Timeout`], [`ErrorKind::Configuration`] for a server that
    /// does not answer like Vault.
    pub async fn health(&self) -> Result<()> {
        require_runtime("VaultClient::health")?;
        let url = self.inner.url("sys/health");
        let what = "health sys/health";
        let resp = self
            .inner
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| to_error(self.inner.transport(e), what))?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let flag = |name: &str| body.get(name).and_then(Value::as_bool);
        if body.get("initialized").is_none() && !(500..600).contains(&status) {
            return Err(to_error(
                Failure::NotVault(format!(
                    "{} answered HTTP {status} without Vault's health fields: not a Vault \
                     server, or a wrong address",
                    self.inner.address
                )),
                what,
            ));
        }
        let down = |why: &str| {
            Err(Error::new(
                ErrorKind::Unavailable,
                format!("{what}: {}: {why} (HTTP {status})", self.inner.address),
            )
            .with_backend(BACKEND)
            .with_code(status.to_string()))
        };
        if flag("initialized") == Some(false) || status == 501 {
            return down("not initialised");
        }
        if flag("sealed") == Some(true) || status == 503 {
            return down("sealed");
        }
        // A performance standby (473) answers reads itself; a standby (429) forwards this
        // client's requests to the active node: both serve requests.
        if matches!(status, 200 | 429 | 473) {
            return Ok(());
        }
        down("unexpected status")
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
            self.connect().await?;
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

/// `e` with the request it happened in named first.
fn prefixed(e: Error, what: &str) -> Error {
    let mut out = Error::new(e.kind(), format!("{what}: {}", e.message())).with_backend(BACKEND);
    if let Some(code) = e.code() {
        out = out.with_code(code.to_owned());
    }
    out
}

impl Inner {
    pub(crate) fn url(&self, path: &str) -> Url {
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

    pub(crate) async fn send(
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

    /// After a 403 with `errors` seen under token generation `seen`: decides between a
    /// policy denial and a rejected token (confirming a bare "permission denied" with
    /// `lookup-self`), and for a rejected token logs in again (once per token, rate-limited;
    /// only if `may_login`). Concurrent callers share one check and one login.
    async fn after_403(&self, seen: u64, errors: &[String], may_login: bool) -> Result<Verdict> {
        let denial = classify_403(errors);
        if denial == Denial::Policy {
            return Ok(Verdict::Denied);
        }
        let mut state = self.login_lock.lock().await;
        if self.token.read().generation != seen {
            // Another caller logged in since this request was sent.
            return Ok(if may_login {
                Verdict::Retry
            } else {
                Verdict::Denied
            });
        }
        if denial == Denial::Unclear && self.lookup_verdict().await? == Denial::Policy {
            return Ok(Verdict::Denied);
        }
        let rejected = |why: String| {
            Error::new(
                ErrorKind::Unauthenticated,
                format!("Vault rejected the token (expired, revoked or unknown){why}"),
            )
            .with_backend(BACKEND)
            .with_code("403")
        };
        if !self.auth.can_login() {
            return Err(rejected(
                "; a fixed token cannot be renewed by logging in: supply a new one".into(),
            ));
        }
        if !may_login {
            return Err(rejected(" right after a fresh login".into()));
        }
        if let Some(at) = state.last_forced
            && at.elapsed() < self.min_relogin_interval
        {
            return Err(rejected(format!(
                "; the last login was {:?} ago, not logging in again before {:?} have passed",
                at.elapsed(),
                self.min_relogin_interval
            )));
        }
        tracing::info!(
            backend = BACKEND,
            method = self.auth.method(),
            "token rejected, logging in again"
        );
        // Counted before the login starts; restored if this future is dropped mid-login
        // (cancellation), so a caller's timeout cannot block the next re-login.
        let mut forced = ForcedLogin {
            previous: state.last_forced.replace(Instant::now()),
            state: &mut state,
            finished: false,
        };
        let result = self.login().await;
        forced.finished = true;
        result.map(|()| Verdict::Retry)
    }

    /// Whether the current token is valid (`Policy`: the 403 was a denial) or rejected, by
    /// `lookup-self` (a valid token without the default policy cannot look itself up: Vault
    /// then answers a policy denial, which also proves the token valid).
    async fn lookup_verdict(&self) -> Result<Denial> {
        match self
            .send(&Method::GET, "auth/token/lookup-self", &[], None)
            .await
        {
            Ok(_) => Ok(Denial::Policy),
            Err(Failure::Status {
                status: 403,
                errors,
            }) => Ok(match classify_403(&errors) {
                Denial::Policy => Denial::Policy,
                Denial::TokenRejected | Denial::Unclear => Denial::TokenRejected,
            }),
            Err(f) => Err(to_error(f, "lookup auth/token/lookup-self")),
        }
    }

    /// Logs in again unless another caller already did since generation `seen` (renewal).
    pub(crate) async fn relogin(&self, seen: u64) -> Result<()> {
        let _guard = self.login_lock.lock().await;
        if self.token.read().generation != seen {
            return Ok(());
        }
        tracing::info!(
            backend = BACKEND,
            method = self.auth.method(),
            "token lease ending, logging in again"
        );
        self.login().await
    }

    /// Logs in with the configured method and installs the new token.
    async fn login(&self) -> Result<()> {
        let Some((path, body)) = self.auth.login_request().await? else {
            return Err(Error::new(
                ErrorKind::Unauthenticated,
                "the fixed token cannot be renewed by logging in",
            )
            .with_backend(BACKEND));
        };
        let what = format!("login {path}");
        let mount = self.auth.mount().unwrap_or_default().to_owned();
        let answer = self
            .send(&Method::POST, &path, &[], Some(&body))
            .await
            .map_err(|f| match f {
                Failure::Status { status: 400, errors } => Error::new(
                    ErrorKind::Unauthenticated,
                    format!("{what}: login rejected: {}", errors.join("; ")),
                )
                .with_backend(BACKEND)
                .with_code("400"),
                // An unauthenticated request to a path with no auth method behind it is a
                // bare 403; Kubernetes also answers 403 for a JWT it does not accept.
                Failure::Status { status: 403, .. } => {
                    let (kind, why) = match &self.auth {
                        VaultAuth::AppRole { .. } => (
                            ErrorKind::Configuration,
                            format!("no AppRole auth method is mounted at auth/{mount} (check the auth mount)"),
                        ),
                        _ => (
                            ErrorKind::Unauthenticated,
                            format!("login rejected: the JWT or role was not accepted, or no auth method is mounted at auth/{mount}"),
                        ),
                    };
                    Error::new(kind, format!("{what}: {why}"))
                        .with_backend(BACKEND)
                        .with_code("403")
                }
                Failure::Status { status: 404, .. } | Failure::Malformed(_) => to_error(
                    Failure::NotVault(format!(
                        "{} did not answer the login like Vault: not a Vault server, or a wrong address",
                        self.address
                    )),
                    &what,
                ),
                f => to_error(f, &what),
            })?;
        drop(body);
        let not_vault = || {
            to_error(
                Failure::NotVault(format!(
                    "{} answered the login without a token: not a Vault server?",
                    self.address
                )),
                &what,
            )
        };
        let auth = answer
            .as_ref()
            .and_then(|a| a.get("auth"))
            .ok_or_else(not_vault)?;
        let token = auth
            .get("client_token")
            .and_then(Value::as_str)
            .ok_or_else(not_vault)?;
        let mut current = self.token.write();
        current.secret = SecretString::from(token.to_owned());
        current.accessor = auth
            .get("accessor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        current.lease = Duration::from_secs(
            auth.get("lease_duration")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        );
        current.renewable = auth
            .get("renewable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        current.generation += 1;
        Ok(())
    }

    /// Learns a fixed token's accessor, TTL and renewability; a rejected token is
    /// `Unauthenticated`, a server that is not Vault `Configuration`.
    async fn lookup_self_at_start(&self) -> Result<()> {
        let what = "lookup auth/token/lookup-self";
        let answer = match self
            .send(&Method::GET, "auth/token/lookup-self", &[], None)
            .await
        {
            Ok(answer) => answer,
            Err(Failure::Status {
                status: 403,
                errors,
            }) if classify_403(&errors) == Denial::Policy => {
                // A valid token without the default policy: it cannot look itself up, so
                // its TTL is unknown and it is not renewed.
                tracing::debug!(backend = BACKEND, "token cannot look itself up");
                return Ok(());
            }
            Err(Failure::Status { status: 403, .. }) => {
                return Err(Error::new(
                    ErrorKind::Unauthenticated,
                    format!(
                        "{what}: Vault at {} rejected the token (expired, revoked or unknown)",
                        self.address
                    ),
                )
                .with_backend(BACKEND)
                .with_code("403"));
            }
            Err(f @ Failure::NotVault(_)) => return Err(to_error(f, what)),
            Err(Failure::Status { status: 404, .. } | Failure::Malformed(_)) => {
                return Err(to_error(
                    Failure::NotVault(format!(
                        "{} has no auth/token/lookup-self: not a Vault server, or a wrong \
                         address or path",
                        self.address
                    )),
                    what,
                ));
            }
            Err(f) => return Err(to_error(f, what)),
        };
        let data = answer.as_ref().and_then(|a| a.get("data")).ok_or_else(|| {
            to_error(
                Failure::NotVault(format!(
                    "{} answered auth/token/lookup-self without data: not a Vault server?",
                    self.address
                )),
                what,
            )
        })?;
        let mut current = self.token.write();
        current.accessor = data
            .get("accessor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        current.lease = Duration::from_secs(data.get("ttl").and_then(Value::as_u64).unwrap_or(0));
        current.renewable = data
            .get("renewable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(())
    }

    /// Renews the token; returns the new lease.
    pub(crate) async fn renew_self(&self) -> Result<Duration> {
        let what = "renew auth/token/renew-self";
        let answer = self
            .send(
                &Method::POST,
                "auth/token/renew-self",
                &[],
                Some(&serde_json::json!({})),
            )
            .await
            .map_err(|f| to_error(f, what))?;
        let lease = answer
            .as_ref()
            .and_then(|a| a.get("auth"))
            .and_then(|a| a.get("lease_duration"))
            .and_then(Value::as_u64)
            .ok_or_else(|| to_error(Failure::Malformed("no lease in renewal".into()), what))?;
        let lease = Duration::from_secs(lease);
        self.token.write().lease = lease;
        Ok(lease)
    }

    pub(crate) fn token_state(&self) -> (Duration, bool, u64) {
        let t = self.token.read();
        (t.lease, t.renewable, t.generation)
    }

    pub(crate) fn renew_fraction(&self) -> f64 {
        self.renew_fraction
    }

    pub(crate) fn auth(&self) -> &VaultAuth {
        &self.auth
    }
}

/// The renewal task's handle on the client (weak, so the task ends with the last clone).
pub(crate) type WeakInner = Weak<Inner>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_debug_hides_secrets() {
        let b = VaultClient::builder("https://vault:8200")
            .auth(VaultAuth::app_role("rid", "sid-very-secret"))
            .client_identity_pem("-----BEGIN PRIVATE KEY-----abc");
        let dbg = format!("{b:?}");
        assert!(!dbg.contains("sid-very-secret"), "{dbg}");
        assert!(!dbg.contains("PRIVATE KEY"), "{dbg}");
        assert!(dbg.contains("vault:8200"), "{dbg}");
    }

    #[tokio::test]
    async fn bad_addresses_are_configuration_errors() {
        for addr in [
            "not a url",
            "ftp://x",
            "mailto:a@b",
            "http://127.0.0.1:8200/v1",
        ] {
            let err = VaultClient::builder(addr)
                .auth(VaultAuth::token("t"))
                .build()
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Configuration, "{addr}: {err}");
        }
    }

    #[test]
    fn auth_mounts_are_checked_like_key_names() {
        let err = VaultClient::builder("http://127.0.0.1:1")
            .auth(VaultAuth::app_role("r", "s").with_mount("../sys"))
            .build_lazy()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration);
        assert!(err.to_string().contains("auth mount"), "{err}");
    }
}
