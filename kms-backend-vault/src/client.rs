//! [`VaultClient`]: the HTTP client every Vault request goes through (auth header, namespace,
//! single-flight re-login on 403, background token renewal, error mapping).

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use kms_core::{Error, ErrorKind, Result};
use parking_lot::RwLock;
use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::task::AbortHandle;

use crate::auth::VaultAuth;
use crate::error_map::{BACKEND, Failure, to_error};

/// The header carrying the token.
const TOKEN_HEADER: &str = "X-Vault-Token";
/// The header selecting a namespace (Vault Enterprise, OpenBao).
const NAMESPACE_HEADER: &str = "X-Vault-Namespace";

/// Builds a [`VaultClient`].
pub struct VaultClientBuilder {
    address: String,
    auth: VaultAuth,
    namespace: Option<String>,
    timeout: Duration,
    ca_pem: Vec<Vec<u8>>,
    identity_pem: Option<SecretString>,
    renew_fraction: f64,
}

impl fmt::Debug for VaultClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultClientBuilder")
            .field("address", &self.address)
            .field("auth", &self.auth)
            .field("namespace", &self.namespace)
            .field("timeout", &self.timeout)
            .field("ca_certs", &self.ca_pem.len())
            .field(
                "client_identity",
                &self.identity_pem.as_ref().map(|_| "[REDACTED]"),
            )
            .field("renew_fraction", &self.renew_fraction)
            .finish()
    }
}

impl VaultClientBuilder {
    /// Authentication (default: an empty token, which `build` rejects as unauthenticated).
    #[must_use]
    pub fn auth(mut self, auth: VaultAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Sends `X-Vault-Namespace` on every request.
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// The per-request timeout (default 10 s); a request that takes longer fails with
    /// [`ErrorKind::Timeout`].
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Trusts this PEM CA certificate (may be called more than once) besides the system roots.
    #[must_use]
    pub fn ca_cert_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem.push(pem.into());
        self
    }

    /// Presents a client certificate: the PEM certificate chain followed by its private key.
    #[must_use]
    pub fn client_identity_pem(mut self, pem: impl Into<String>) -> Self {
        self.identity_pem = Some(SecretString::from(pem.into()));
        self
    }

    /// Renews the token when this fraction of its lease has passed (default 2/3, clamped to
    /// 0.1..=0.9).
    #[must_use]
    pub fn renew_fraction(mut self, fraction: f64) -> Self {
        self.renew_fraction = fraction.clamp(0.1, 0.9);
        self
    }

    /// Builds the HTTP client, logs in (AppRole, Kubernetes) or looks the token up, and starts
    /// background renewal if the token is renewable. Must be called inside a Tokio runtime.
    pub async fn build(self) -> Result<VaultClient> {
        let config_err =
            |what: String| Error::new(ErrorKind::Configuration, what).with_backend(BACKEND);
        let mut base = Url::parse(&self.address)
            .map_err(|e| config_err(format!("bad Vault address {:?}: {e}", self.address)))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(config_err(format!(
                "bad Vault address {:?}: not an http(s) URL",
                self.address
            )));
        }
        base.path_segments_mut()
            .map_err(|()| config_err("bad Vault address".into()))?
            .pop_if_empty()
            .push("v1");
        let mut http = reqwest::Client::builder().timeout(self.timeout);
        for pem in &self.ca_pem {
            let cert = reqwest::Certificate::from_pem(pem)
                .map_err(|e| config_err(format!("bad CA certificate: {e}")))?;
            http = http.add_root_certificate(cert);
        }
        if let Some(pem) = &self.identity_pem {
            let identity = reqwest::Identity::from_pem(pem.expose_secret().as_bytes())
                .map_err(|_| config_err("bad client certificate or key PEM".into()))?;
            http = http.identity(identity);
        }
        let http = http
            .build()
            .map_err(|e| config_err(format!("cannot build the HTTP client: {e}")))?;
        let initial = match &self.auth {
            VaultAuth::Token(token) => Token {
                secret: token.clone(),
                accessor: None,
                lease: Duration::ZERO,
                renewable: false,
                generation: 0,
            },
            _ => Token::empty(),
        };
        let inner = Arc::new(Inner {
            http,
            base,
            namespace: self.namespace,
            auth: self.auth,
            token: RwLock::new(initial),
            login_lock: tokio::sync::Mutex::new(()),
            renew_fraction: self.renew_fraction,
            renewer: parking_lot::Mutex::new(None),
        });
        if inner.auth.can_login() {
            inner.login().await?;
        } else {
            inner.lookup_self().await?;
        }
        let weak = Arc::downgrade(&inner);
        let task = tokio::spawn(renew_loop(weak));
        *inner.renewer.lock() = Some(task.abort_handle());
        Ok(VaultClient { inner })
    }
}

/// A Vault/OpenBao API client shared by [`VaultStore`](crate::VaultStore) and
/// [`VaultTransitProvider`](crate::VaultTransitProvider). Cheap to clone.
///
/// - Every request sends the current token and the namespace header.
/// - A 403 (AppRole, Kubernetes) first checks the token (`lookup-self`). If the token itself
///   is rejected (expired, revoked), the client logs in exactly once, shared by all concurrent
///   callers that saw the same token, and the request is sent once more; a second 403 is
///   [`ErrorKind::PermissionDenied`]. If the token is valid, the 403 is a policy denial and is
///   [`ErrorKind::PermissionDenied`] at once, without a login.
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
            .field("address", &self.inner.base.as_str())
            .field("namespace", &self.inner.namespace)
            .field("auth", &self.inner.auth)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    namespace: Option<String>,
    auth: VaultAuth,
    token: RwLock<Token>,
    login_lock: tokio::sync::Mutex<()>,
    renew_fraction: f64,
    renewer: parking_lot::Mutex<Option<AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self.renewer.get_mut().take() {
            task.abort();
        }
    }
}

#[derive(Clone)]
struct Token {
    secret: SecretString,
    accessor: Option<String>,
    lease: Duration,
    renewable: bool,
    /// Bumped by every login, so concurrent 403s re-login once.
    generation: u64,
}

impl Token {
    fn empty() -> Self {
        Self {
            secret: SecretString::from(String::new()),
            accessor: None,
            lease: Duration::ZERO,
            renewable: false,
            generation: 0,
        }
    }
}

impl VaultClient {
    /// A builder for the server at `address` (`https://vault.example:8200`).
    pub fn builder(address: impl Into<String>) -> VaultClientBuilder {
        VaultClientBuilder {
            address: address.into(),
            auth: VaultAuth::token(String::new()),
            namespace: None,
            timeout: Duration::from_secs(10),
            ca_pem: Vec::new(),
            identity_pem: None,
            renew_fraction: 2.0 / 3.0,
        }
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

    /// `sys/health`: `Ok` for an active node or a performance standby; sealed, uninitialised
    /// and plain standby nodes are [`ErrorKind::Unavailable`]. It says whether the server can
    /// serve, not whether this client's token is still valid (a 403 on use re-logs in).
    pub async fn health(&self) -> Result<()> {
        let url = self.inner.url("sys/health");
        let what = "health sys/health";
        // sys/health is unauthenticated and lives in the root namespace: no token, no
        // namespace header.
        let resp = self
            .inner
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| to_error(Failure::Transport(e), what))?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let flag = |name: &str| body.get(name).and_then(Value::as_bool);
        let down = |why: &str| {
            Err(Error::new(
                ErrorKind::Unavailable,
                format!("{what}: {why} (HTTP {status})"),
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
        if flag("performance_standby") == Some(true) || status == 473 {
            return Ok(());
        }
        if flag("standby") == Some(true) || status == 429 {
            return down("standby");
        }
        if status == 200 {
            return Ok(());
        }
        down("unexpected status")
    }

    /// Sends `method path` with an optional JSON body and returns the JSON answer (`None` for
    /// 204). `what` names the request in errors. Handles re-login and error mapping.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        what: &str,
    ) -> Result<Option<Value>> {
        let seen = self.inner.token.read().generation;
        match self.inner.send(&method, path, query, body).await {
            Err(denied @ Failure::Status { status: 403, .. }) if self.inner.auth.can_login() => {
                if self.inner.refresh_if_rejected(seen).await? {
                    self.inner.send(&method, path, query, body).await
                } else {
                    Err(denied)
                }
            }
            other => other,
        }
        .map_err(|f| to_error(f, what))
    }
}

impl Inner {
    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.extend(path.split('/').filter(|s| !s.is_empty()));
        }
        url
    }

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
        let resp = req.send().await.map_err(Failure::Transport)?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(Failure::Transport)?;
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
        let errors = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("errors").cloned())
            .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok())
            .unwrap_or_default();
        Err(Failure::Status { status, errors })
    }

    /// After a 403: returns `true` if the request should be sent again with a new token
    /// (another caller already logged in since generation `seen`, or the token itself is
    /// rejected and this call logged in), `false` if the token is still valid (a policy
    /// denial: no login, so a denied path cannot cause a login storm or burn secret-id uses).
    /// One caller at a time, so concurrent 403s share one check and one login.
    async fn refresh_if_rejected(&self, seen: u64) -> Result<bool> {
        let _guard = self.login_lock.lock().await;
        if self.token.read().generation != seen {
            return Ok(true);
        }
        match self
            .send(&Method::GET, "auth/token/lookup-self", &[], None)
            .await
        {
            Ok(_) => Ok(false),
            Err(Failure::Status { status: 403, .. }) => {
                tracing::info!(
                    backend = BACKEND,
                    method = self.auth.method(),
                    "token rejected, logging in again"
                );
                self.login().await?;
                Ok(true)
            }
            Err(f) => Err(to_error(f, "lookup auth/token/lookup-self")),
        }
    }

    /// Logs in again unless another caller already did since generation `seen`.
    async fn relogin(&self, seen: u64) -> Result<()> {
        let _guard = self.login_lock.lock().await;
        if self.token.read().generation != seen {
            return Ok(());
        }
        tracing::info!(
            backend = BACKEND,
            method = self.auth.method(),
            "token rejected, logging in again"
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
        let answer = self
            .send(&Method::POST, &path, &[], Some(&body))
            .await
            .map_err(|f| match f {
                Failure::Status {
                    status: 400 | 403, ..
                } => Error::new(
                    ErrorKind::Unauthenticated,
                    format!("{what}: login rejected"),
                )
                .with_backend(BACKEND),
                f => to_error(f, &what),
            })?;
        drop(body);
        let auth = answer
            .as_ref()
            .and_then(|a| a.get("auth"))
            .ok_or_else(|| to_error(Failure::Malformed("no auth in login answer".into()), &what))?;
        let token = auth
            .get("client_token")
            .and_then(Value::as_str)
            .ok_or_else(|| to_error(Failure::Malformed("no client_token".into()), &what))?;
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

    /// Learns a fixed token's accessor, TTL and renewability.
    async fn lookup_self(&self) -> Result<()> {
        let what = "lookup auth/token/lookup-self";
        let answer = self
            .send(&Method::GET, "auth/token/lookup-self", &[], None)
            .await
            .map_err(|f| match f {
                Failure::Status { status: 403, .. } => Error::new(
                    ErrorKind::Unauthenticated,
                    format!("{what}: token rejected"),
                )
                .with_backend(BACKEND),
                f => to_error(f, what),
            })?;
        let data = answer.as_ref().and_then(|a| a.get("data"));
        let mut current = self.token.write();
        current.accessor = data
            .and_then(|d| d.get("accessor"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        current.lease = Duration::from_secs(
            data.and_then(|d| d.get("ttl"))
                .and_then(Value::as_u64)
                .unwrap_or(0),
        );
        current.renewable = data
            .and_then(|d| d.get("renewable"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(())
    }

    /// Renews the token; returns the new lease.
    async fn renew_self(&self) -> Result<Duration> {
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
}

/// Renews the token at `renew_fraction` of its lease until the client is dropped.
async fn renew_loop(weak: Weak<Inner>) {
    loop {
        let (lease, fraction) = match weak.upgrade() {
            Some(inner) => {
                let t = inner.token.read();
                (t.lease, inner.renew_fraction)
            }
            None => return,
        };
        if lease.is_zero() {
            // Non-expiring token (root, or a fixed token with no TTL): nothing to renew.
            return;
        }
        tokio::time::sleep(lease.mul_f64(fraction).max(Duration::from_millis(100))).await;
        let Some(inner) = weak.upgrade() else { return };
        let renewable = inner.token.read().renewable;
        let renewed = if renewable {
            match inner.renew_self().await {
                // A lease that stopped growing has hit its max TTL: log in afresh instead.
                Ok(new) if new >= lease.mul_f64(0.5) || !inner.auth.can_login() => Ok(()),
                Ok(_) => Err(()),
                Err(e) => {
                    tracing::warn!(
                        backend = BACKEND,
                        kind = e.kind().as_str(),
                        "token renewal failed"
                    );
                    Err(())
                }
            }
        } else {
            Err(())
        };
        if renewed.is_err() {
            if !inner.auth.can_login() {
                return;
            }
            let seen = inner.token.read().generation;
            if let Err(e) = inner.relogin(seen).await {
                tracing::warn!(
                    backend = BACKEND,
                    kind = e.kind().as_str(),
                    "re-login failed"
                );
                drop(inner);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

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
        for addr in ["not a url", "ftp://x", "mailto:a@b"] {
            let err = VaultClient::builder(addr).build().await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Configuration, "{addr}: {err}");
        }
    }
}
