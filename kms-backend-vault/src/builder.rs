//! The builders, each beside the `::builder()` that makes it:
//!
//! - [`VaultClientBuilder`] ([`VaultClient::builder`]): address, auth, namespace, TLS and
//!   timing settings, validated at build; [`from_env`](VaultClientBuilder::from_env) reads
//!   the `vault` CLI's variables.
//! - [`VaultStoreBuilder`] ([`VaultStore::builder`]): mount, KV version, prefix, remove mode
//!   and field of a [`VaultStore`], validated at build.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use kms_core::{Error, ErrorKind, Result};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

use crate::BACKEND;
use crate::auth::VaultAuth;
use crate::client::{Node, VaultClient, require_runtime};
use crate::config_path::{config_error, config_path};
use crate::engine::KvVersion;
use crate::store::{RemoveMode, VaultStore};

/// The address the `vault` CLI uses when `VAULT_ADDR` is not set.
pub const DEFAULT_ADDRESS: &str = "https://127.0.0.1:8200";

/// How long a read over a cluster waits, by default, for a node that can serve it
/// ([`VaultClientBuilder::consistency_wait`]).
pub const DEFAULT_CONSISTENCY_WAIT: Duration = Duration::from_secs(5);

/// How often a cluster's nodes are probed in the background by default
/// ([`VaultClientBuilder::probe_interval`]).
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// Builds a [`VaultClient`].
///
/// Settings are checked when the client is built ([`build`](Self::build) or
/// [`build_lazy`](Self::build_lazy)); a bad one is an [`ErrorKind::Configuration`] error
/// naming it.
pub struct VaultClientBuilder {
    address: String,
    /// A cluster's node addresses (replaces `address` when set).
    nodes: Vec<String>,
    probe_interval: Duration,
    consistency_wait: Duration,
    auth: VaultAuth,
    namespace: Option<String>,
    timeout: Duration,
    ca_pem: Vec<Vec<u8>>,
    ca_files: Vec<(&'static str, PathBuf)>,
    identity_pem: Option<SecretString>,
    renew_fraction: f64,
    min_relogin_interval: Duration,
    /// A setting from the environment that could not be parsed, reported by `build`.
    deferred: Option<Error>,
    /// Where the token came from when none was given (for the "no token" message).
    token_source: &'static str,
}

impl fmt::Debug for VaultClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultClientBuilder")
            .field("address", &redacted(&self.address))
            .field(
                "nodes",
                &self.nodes.iter().map(|a| redacted(a)).collect::<Vec<_>>(),
            )
            .field("probe_interval", &self.probe_interval)
            .field("consistency_wait", &self.consistency_wait)
            .field("auth", &self.auth)
            .field("namespace", &self.namespace)
            .field("timeout", &self.timeout)
            .field("ca_certs", &(self.ca_pem.len() + self.ca_files.len()))
            .field(
                "client_identity",
                &self.identity_pem.as_ref().map(|_| "[REDACTED]"),
            )
            .field("renew_fraction", &self.renew_fraction)
            .field("min_relogin_interval", &self.min_relogin_interval)
            .finish()
    }
}

impl VaultClient {
    /// A builder for the server at `address` (`https://vault.example:8200`, without `/v1`).
    pub fn builder(address: impl Into<String>) -> VaultClientBuilder {
        VaultClientBuilder::new(address.into())
    }
}

impl VaultClientBuilder {
    fn new(address: String) -> Self {
        Self {
            address,
            nodes: Vec::new(),
            probe_interval: DEFAULT_PROBE_INTERVAL,
            consistency_wait: DEFAULT_CONSISTENCY_WAIT,
            auth: VaultAuth::token(String::new()),
            namespace: None,
            timeout: Duration::from_secs(10),
            ca_pem: Vec::new(),
            ca_files: Vec::new(),
            identity_pem: None,
            renew_fraction: 2.0 / 3.0,
            min_relogin_interval: Duration::from_secs(10),
            deferred: None,
            token_source: "no token was configured (VaultAuth::token, or VAULT_TOKEN with from_env)",
        }
    }

    /// A builder configured the way the `vault` CLI is, from the process environment:
    ///
    /// | Variable (then its OpenBao spelling) | Setting |
    /// |---|---|
    /// | `VAULT_ADDR` / `BAO_ADDR` | the address (default `https://127.0.0.1:8200`, as the CLI) |
    /// | `VAULT_TOKEN` / `BAO_TOKEN` | [`VaultAuth::token`] |
    /// | `VAULT_NAMESPACE` / `BAO_NAMESPACE` | [`namespace`](Self::namespace) |
    /// | `VAULT_CACERT` / `BAO_CACERT` | a PEM CA file, read at build ([`ca_cert_pem`](Self::ca_cert_pem)) |
    /// | `VAULT_CLIENT_TIMEOUT` / `BAO_CLIENT_TIMEOUT` | [`timeout`](Self::timeout): seconds (`30`) or a duration (`30s`) |
    ///
    /// Not read: `VAULT_SKIP_VERIFY` (never disables TLS checks), `VAULT_CAPATH`,
    /// `VAULT_CLIENT_CERT`/`VAULT_CLIENT_KEY` (use
    /// [`client_identity_pem`](Self::client_identity_pem)) and the CLI's `~/.vault-token`.
    /// Later builder calls override what the environment set. A value that cannot be parsed
    /// is an [`ErrorKind::Configuration`] error from `build`, naming the variable.
    pub fn from_env() -> Self {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with another source of variables (`lookup(name)` returns a
    /// variable's value), for tests and for services that keep their settings elsewhere.
    pub fn from_env_with(lookup: impl Fn(&str) -> Option<String>) -> Self {
        // The `vault` CLI's name first, then the OpenBao CLI's; empty counts as unset.
        let get = |vault: &'static str, bao: &'static str| {
            lookup(vault)
                .filter(|v| !v.is_empty())
                .map(|v| (vault, v))
                .or_else(|| lookup(bao).filter(|v| !v.is_empty()).map(|v| (bao, v)))
        };
        let mut builder = Self::new(
            get("VAULT_ADDR", "BAO_ADDR")
                .map(|(_, v)| v)
                .unwrap_or_else(|| DEFAULT_ADDRESS.into()),
        );
        builder.token_source = "VAULT_TOKEN (or BAO_TOKEN) is not set";
        if let Some((_, token)) = get("VAULT_TOKEN", "BAO_TOKEN") {
            builder.auth = VaultAuth::token(token);
        }
        if let Some((_, ns)) = get("VAULT_NAMESPACE", "BAO_NAMESPACE") {
            builder.namespace = Some(ns);
        }
        if let Some((var, path)) = get("VAULT_CACERT", "BAO_CACERT") {
            builder.ca_files.push((var, PathBuf::from(path)));
        }
        if let Some((var, text)) = get("VAULT_CLIENT_TIMEOUT", "BAO_CLIENT_TIMEOUT") {
            let parsed = text
                .trim()
                .parse::<u64>()
                .map(Duration::from_secs)
                .or_else(|_| humantime::parse_duration(text.trim()));
            match parsed {
                Ok(d) if !d.is_zero() => builder.timeout = d,
                _ => {
                    builder.deferred = Some(config_error(format!(
                        "{var}={text:?} is not a timeout (seconds, or a duration like \"30s\")"
                    )));
                }
            }
        }
        builder
    }

    /// The node addresses of one Vault/OpenBao cluster (replacing the single address):
    /// reads go to any serving node, writes to the active one, and a node that refuses
    /// connections, hangs or is sealed is skipped until the background probe finds it
    /// serving again. Reads carry the newest `X-Vault-Index` this client has seen, so they
    /// never reflect older state than this client's own writes and reads, on any node (see
    /// the crate docs, "A cluster"). Each address is checked as
    /// [`VaultClient::builder`]'s; an empty list is a [`ErrorKind::Configuration`] error
    /// from `build`. One address is the same as `VaultClient::builder(address)`.
    ///
    /// Every request to one node is bounded by [`timeout`](Self::timeout): set it to how
    /// long a caller may wait before a hung node is skipped.
    #[must_use]
    pub fn addresses<I, A>(mut self, addresses: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<String>,
    {
        self.nodes = addresses.into_iter().map(Into::into).collect();
        if self.nodes.is_empty() {
            self.deferred.get_or_insert_with(|| {
                config_error("addresses: the list of Vault node addresses is empty".into())
            });
        }
        self
    }

    /// How long a read over a cluster waits, by default, for a node that can serve it
    /// ([`VaultClientBuilder::consistency_wait`]).
    pub const DEFAULT_CONSISTENCY_WAIT: Duration = Duration::from_secs(5);

    /// How often a cluster's nodes are probed (`sys/health`) in the background (default
    /// [`DEFAULT_PROBE_INTERVAL`]); a node marked down is used again at most this long after
    /// it serves again. Only a cluster ([`addresses`](Self::addresses) with more than one)
    /// probes. Zero is a [`ErrorKind::Configuration`] error from `build`.
    #[must_use]
    pub fn probe_interval(mut self, interval: Duration) -> Self {
        self.probe_interval = interval;
        self
    }

    /// How long a read over a cluster waits for a node that can serve it (default
    /// [`DEFAULT_CONSISTENCY_WAIT`]): when the active node dies, the standbys that have not
    /// yet applied this client's last write cannot serve a read that must see it until a new
    /// active node is elected (a few seconds); the read tries the nodes again every 100 ms
    /// until one serves or this time has passed, then fails with
    /// [`ErrorKind::Unavailable`]. It never falls back to older state. Zero tries each node
    /// once. Only a cluster waits.
    #[must_use]
    pub fn consistency_wait(mut self, wait: Duration) -> Self {
        self.consistency_wait = wait;
        self
    }

    /// Authentication (default: no token, which `build` rejects as unauthenticated).
    #[must_use]
    pub fn auth(mut self, auth: VaultAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Sends `X-Vault-Namespace` on every request (Vault Enterprise, OpenBao).
    ///
    /// One canonical form: surrounding `/` are dropped, and the root namespace (`""`, `"/"`,
    /// `"root"`, or a leading `root/`) sends no header at all (Vault would read a header
    /// `root` as a child namespace named `root`). Each segment is checked like a key name.
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

    /// The shortest time between two logins caused by Vault rejecting the token (default
    /// 10 s). A token rejected again sooner than this after a login is
    /// [`ErrorKind::Unauthenticated`] without another login, so a server or proxy that keeps
    /// rejecting tokens cannot cause a login storm (or burn AppRole secret-id uses).
    #[must_use]
    pub fn min_relogin_interval(mut self, interval: Duration) -> Self {
        self.min_relogin_interval = interval;
        self
    }

    /// Builds the client, then connects: logs in (AppRole, Kubernetes) or looks the token up,
    /// and starts background renewal if the token is renewable.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::Configuration`]: a bad setting (address, namespace, auth mount, CA
    ///   file, TLS material), an address that is not a Vault server, or no Tokio runtime
    ///   (the client's I/O needs one: call it from `#[tokio::main]` or a runtime's
    ///   `block_on`).
    /// - [`ErrorKind::Unauthenticated`]: no token, a token Vault rejects, a login rejected.
    /// - [`ErrorKind::Unavailable`] / [`ErrorKind::Timeout`]: the server cannot be reached
    ///   (the message names the address and the cause). To start before Vault is up, use
    ///   [`build_lazy`](Self::build_lazy).
    pub async fn build(self) -> Result<VaultClient> {
        require_runtime("VaultClientBuilder::build")?;
        let client = self.build_lazy()?;
        client.connect().await?;
        Ok(client)
    }

    /// Builds the client without any I/O (like tonic's `connect_lazy`): settings are checked
    /// now; the login or token lookup happens on first use, once, shared by concurrent
    /// callers, and is tried again on the next call if it fails. Needs no runtime to build
    /// (a runtime is needed to use it).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] for a bad setting, as [`build`](Self::build).
    pub fn build_lazy(self) -> Result<VaultClient> {
        if let Some(e) = self.deferred {
            return Err(e);
        }
        let raw: Vec<&str> = if self.nodes.is_empty() {
            vec![self.address.as_str()]
        } else {
            self.nodes.iter().map(String::as_str).collect()
        };
        let mut nodes = Vec::with_capacity(raw.len());
        for address in raw {
            let (base, shown) = parse_address(address)?;
            if nodes.iter().any(|n: &Node| n.address == shown) {
                return Err(config_error(format!(
                    "addresses: {shown:?} is listed twice"
                )));
            }
            nodes.push(Node::new(base, shown));
        }
        if self.probe_interval.is_zero() {
            return Err(config_error(
                "probe_interval: must be longer than zero".into(),
            ));
        }
        if self.timeout.is_zero() {
            return Err(config_error("timeout: must be longer than zero".into()));
        }
        let namespace = match &self.namespace {
            Some(ns) => canonical_namespace(ns)?,
            None => None,
        };
        if let Some(mount) = self.auth.mount() {
            config_path("auth mount", mount)?;
        }
        let mut http = reqwest::Client::builder().timeout(self.timeout);
        if nodes.len() > 1 {
            // A standby that cannot forward redirects to the active node it knows, which may
            // be the one that just died: the client routes to the next node itself instead.
            http = http.redirect(reqwest::redirect::Policy::none());
        }
        let mut pems: Vec<(String, Vec<u8>)> = self
            .ca_pem
            .into_iter()
            .map(|p| ("CA certificate".to_owned(), p))
            .collect();
        for (var, path) in &self.ca_files {
            let pem = std::fs::read(path).map_err(|e| {
                config_error(format!(
                    "{var}: cannot read the CA file {}: {}",
                    path.display(),
                    e.kind()
                ))
            })?;
            pems.push((format!("{var} ({})", path.display()), pem));
        }
        for (what, pem) in &pems {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| config_error(format!("bad {what}: no PEM certificate in it")))?;
            for cert in certs {
                http = http.add_root_certificate(cert);
            }
        }
        if let Some(pem) = &self.identity_pem {
            let identity = reqwest::Identity::from_pem(pem.expose_secret().as_bytes())
                .map_err(|_| config_error("bad client certificate or key PEM".into()))?;
            http = http.identity(identity);
        }
        let http = http
            .build()
            .map_err(|e| config_error(format!("cannot build the HTTP client: {e}")))?;
        if let VaultAuth::Token(t) = &self.auth
            && t.expose_secret().is_empty()
        {
            return Err(Error::new(
                ErrorKind::Unauthenticated,
                format!("no Vault token: {}", self.token_source),
            )
            .with_backend(BACKEND));
        }
        Ok(VaultClient::from_parts(
            http,
            nodes,
            namespace,
            self.auth,
            self.renew_fraction,
            self.min_relogin_interval,
            self.timeout,
            self.probe_interval,
            self.consistency_wait,
        ))
    }
}

/// `raw` with any user info (`user:password@`, e.g. a proxy's basic auth) replaced by
/// `[REDACTED]`, for messages and `Debug`; works on addresses that do not parse too.
fn redacted(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://[REDACTED]@{}", &rest[at + 1..]),
        None => raw.to_owned(),
    }
}

/// The API base (`<address>/v1`) and the address as shown in messages (no user info).
fn parse_address(raw: &str) -> Result<(Url, String)> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(config_error(
            "no Vault address: pass one to VaultClient::builder or set VAULT_ADDR".into(),
        ));
    }
    let shown_raw = redacted(raw);
    let bad = |why: String| {
        config_error(format!(
            "bad Vault address {shown_raw:?}: {why} (expected http(s)://host:port)"
        ))
    };
    let mut url = Url::parse(raw).map_err(|e| bad(e.to_string()))?;
    if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
        return Err(bad("not an http(s) URL".into()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a query or fragment cannot be part of it".into()));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    if path == "/v1" || path.ends_with("/v1") {
        let without = format!(
            "{}{}",
            url.origin().ascii_serialization(),
            &path[..path.len() - 3]
        );
        return Err(config_error(format!(
            "Vault address {shown_raw:?} ends in /v1: the client adds /v1 itself; use {without:?}"
        )));
    }
    let shown = format!("{}{path}", url.origin().ascii_serialization());
    url.set_path(&path);
    url.path_segments_mut()
        .map_err(|()| bad("not a base URL".into()))?
        .pop_if_empty()
        .push("v1");
    Ok((url, shown))
}

/// The namespace header value, or `None` for the root namespace (see
/// [`VaultClientBuilder::namespace`]).
fn canonical_namespace(raw: &str) -> Result<Option<String>> {
    let trimmed = raw.trim().trim_matches('/');
    let trimmed = match trimmed.strip_prefix("root") {
        Some("") => "",
        Some(rest) if rest.starts_with('/') => rest.trim_start_matches('/'),
        _ => trimmed,
    };
    if trimmed.is_empty() {
        return Ok(None);
    }
    config_path("namespace", trimmed).map(Some)
}

impl VaultStore {
    /// A builder over `client` for the KV v2 mount `secret`.
    pub fn builder(client: VaultClient) -> VaultStoreBuilder {
        VaultStoreBuilder {
            client,
            mount: "secret".into(),
            prefix: None,
            version: KvVersion::V2,
            remove: RemoveMode::DestroyAll,
            field: None,
        }
    }
}

/// Builds a [`VaultStore`]; settings are checked by [`build`](Self::build).
#[derive(Debug)]
pub struct VaultStoreBuilder {
    client: VaultClient,
    mount: String,
    prefix: Option<String>,
    version: KvVersion,
    remove: RemoveMode,
    field: Option<String>,
}

impl VaultStoreBuilder {
    /// The KV mount (default `"secret"`), checked like a key name (`"../sys"` is rejected)
    /// and, on first use, against what Vault has mounted there.
    #[must_use]
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = mount.into();
        self
    }

    /// The KV version of the mount (default [`KvVersion::V2`]); checked against the mount on
    /// first use.
    #[must_use]
    pub fn kv_version(mut self, version: KvVersion) -> Self {
        self.version = version;
        self
    }

    /// Keeps every key under `prefix/` inside the mount (names stay relative to it). The
    /// prefix must itself be a valid [`KeyName`](kms_core::KeyName) (checked by `build`).
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// What `remove` does on KV v2 (default [`RemoveMode::DestroyAll`]).
    #[must_use]
    pub fn remove_mode(mut self, mode: RemoveMode) -> Self {
        self.remove = mode;
        self
    }

    /// Reads and writes one field of each secret: for secrets written with
    /// `bao kv put secret/app/db username=app password=…`, `.field("password")` makes `get`
    /// return the password.
    ///
    /// - `get` / `get_version`: the field's text (a non-string JSON value as its JSON text,
    ///   `5432`); a secret without the field is [`ErrorKind::InvalidData`] naming the field.
    /// - `store`: sets the field and keeps the others (read, then write; on KV v2 the write
    ///   is a check-and-set against the version read, or against "no version yet" when it
    ///   creates the secret, so a concurrent change is [`ErrorKind::Conflict`], never lost;
    ///   KV v1 has no check-and-set: writers in other processes can overwrite each other's
    ///   fields, writes through one store and its clones are ordered). Values must be UTF-8 text
    ///   ([`ErrorKind::InvalidInput`] before any I/O otherwise).
    /// - `remove`: removes the field; the secret itself goes (as [`RemoveMode`] says) when it
    ///   was the last field. A secret without the field is [`ErrorKind::NotFound`].
    /// - `list`: the secrets' names, as without a field.
    #[must_use]
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The store. No I/O: the mount is checked on first use (see [`VaultStore`]).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] naming the setting: a mount or prefix that is not a
    /// valid path (`"../sys"`, `""`), an empty field name.
    pub fn build(self) -> Result<VaultStore> {
        let mount = config_path("mount", &self.mount)?;
        let prefix = self
            .prefix
            .as_deref()
            .map(|p| config_path("prefix", p))
            .transpose()?;
        if let Some(f) = &self.field
            && (f.is_empty() || f.chars().any(char::is_control))
        {
            return Err(Error::new(
                ErrorKind::Configuration,
                format!("field {f:?}: a field name must be non-empty text"),
            )
            .with_backend(BACKEND));
        }
        Ok(VaultStore::new(
            self.client,
            mount,
            prefix,
            self.version,
            self.remove,
            self.field,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_have_one_canonical_form() {
        for root in ["", "/", "root", "/root/", " root "] {
            assert_eq!(canonical_namespace(root).unwrap(), None, "{root:?}");
        }
        for (raw, want) in [
            ("team-a", "team-a"),
            ("/team-a/", "team-a"),
            ("root/team-a", "team-a"),
            ("team-a/sub", "team-a/sub"),
            ("rooted", "rooted"),
        ] {
            assert_eq!(
                canonical_namespace(raw).unwrap().as_deref(),
                Some(want),
                "{raw:?}"
            );
        }
        for bad in ["a//b", "../x", "a/./b", "a b", "a\tb"] {
            let err = canonical_namespace(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Configuration, "{bad:?}");
            assert!(err.to_string().contains("namespace"), "{err}");
        }
    }

    #[test]
    fn addresses_are_checked_and_v1_is_rejected_with_a_hint() {
        let (base, shown) = parse_address("http://127.0.0.1:8200/").unwrap();
        assert_eq!(base.as_str(), "http://127.0.0.1:8200/v1");
        assert_eq!(shown, "http://127.0.0.1:8200");
        let (base, _) = parse_address("https://proxy.example/vault").unwrap();
        assert_eq!(base.as_str(), "https://proxy.example/vault/v1");
        let (_, shown) = parse_address("https://user:pw@vault.example:8200").unwrap();
        assert_eq!(
            shown, "https://vault.example:8200",
            "no user info in messages"
        );
        // User info (a proxy's basic-auth password) never reaches a message or Debug.
        for bad in [
            "https://user:pw-s3cret@vault.example:8200/v1",
            "https://user:pw-s3cret@vault.example:8200?x=1",
            "ftp://user:pw-s3cret@vault.example",
        ] {
            let err = parse_address(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Configuration);
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
        let builder = VaultClientBuilder::new("https://user:pw-s3cret@vault.example:8200".into());
        assert!(!format!("{builder:?}").contains("s3cret"), "{builder:?}");
        for v1 in ["http://127.0.0.1:8200/v1", "http://127.0.0.1:8200/v1/"] {
            let err = parse_address(v1).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Configuration);
            assert!(
                err.to_string().contains("\"http://127.0.0.1:8200\""),
                "{err}"
            );
        }
        for bad in [
            "",
            "not a url",
            "ftp://x",
            "mailto:a@b",
            "http://h/?a=1",
            "http://h/#f",
        ] {
            let err = parse_address(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Configuration, "{bad:?}");
        }
    }

    #[test]
    fn from_env_reads_the_cli_variables() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let b = VaultClientBuilder::from_env_with(env(&[
            ("VAULT_ADDR", "http://vault.internal:8200"),
            ("VAULT_TOKEN", "hvs.env-token"),
            ("VAULT_NAMESPACE", "team-a"),
            ("VAULT_CLIENT_TIMEOUT", "3s"),
            ("BAO_ADDR", "http://ignored:1"),
        ]));
        assert_eq!(b.address, "http://vault.internal:8200");
        assert_eq!(b.namespace.as_deref(), Some("team-a"));
        assert_eq!(b.timeout, Duration::from_secs(3));
        assert!(matches!(&b.auth, VaultAuth::Token(t) if t.expose_secret() == "hvs.env-token"));
        assert!(!format!("{b:?}").contains("env-token"));

        // OpenBao spellings as the fallback; the CLI default address.
        let b = VaultClientBuilder::from_env_with(env(&[("BAO_ADDR", "http://bao:8200")]));
        assert_eq!(b.address, "http://bao:8200");
        let b = VaultClientBuilder::from_env_with(env(&[("VAULT_CLIENT_TIMEOUT", "45")]));
        assert_eq!(b.address, DEFAULT_ADDRESS);
        assert_eq!(b.timeout, Duration::from_secs(45));

        // No token: a clear error naming the variable, without I/O.
        let err = VaultClientBuilder::from_env_with(env(&[]))
            .build_lazy()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthenticated);
        assert!(err.to_string().contains("VAULT_TOKEN"), "{err}");
        // Unparsable values and unreadable files name the variable.
        let err = VaultClientBuilder::from_env_with(env(&[
            ("VAULT_TOKEN", "t"),
            ("VAULT_CLIENT_TIMEOUT", "soon"),
        ]))
        .build_lazy()
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration);
        assert!(err.to_string().contains("VAULT_CLIENT_TIMEOUT"), "{err}");
        let err = VaultClientBuilder::from_env_with(env(&[
            ("VAULT_TOKEN", "t"),
            ("VAULT_CACERT", "/nonexistent/ca.pem"),
        ]))
        .build_lazy()
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration);
        assert!(err.to_string().contains("VAULT_CACERT"), "{err}");
    }

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
