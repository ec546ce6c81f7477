//! `vault`: HashiCorp Vault / OpenBao KV (`kms_backend_vault::VaultStore`) and the client
//! every Vault call goes through (`kms_backend_vault::VaultClient`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::secret_ref::SecretRef;
use crate::{duration, scalar};

/// How a Vault client logs in: `[stores.NAME.vault.auth]`. Maps onto
/// `kms_backend_vault::VaultAuth`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultAuthConfig {
    /// `token` (the default), `approle` or `kubernetes`.
    pub method: Option<VaultAuthMethod>,
    /// The token (`method = "token"`), usually `env:VAULT_TOKEN` or `file:/path`.
    pub token: Option<SecretRef>,
    /// The AppRole role id (not printed).
    pub role_id: Option<SecretRef>,
    /// The AppRole secret id.
    pub secret_id: Option<SecretRef>,
    /// The Kubernetes role.
    pub role: Option<String>,
    /// The service-account token file (Kubernetes; default
    /// `/var/run/secrets/kubernetes.io/serviceaccount/token`).
    pub jwt_path: Option<PathBuf>,
    /// The auth mount (default `approle` / `kubernetes`).
    pub mount: Option<String>,
}

/// Vault auth methods.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum VaultAuthMethod {
    /// A token obtained elsewhere.
    Token,
    /// AppRole (`auth/<mount>/login` with a role id and a secret id).
    Approle,
    /// Kubernetes (`auth/<mount>/login` with the service-account JWT).
    Kubernetes,
}

/// How to reach Vault: the client half of [`VaultConfig`], also `envelope.vault` (the client
/// Vault Transit uses when the store itself is not a Vault store).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConnectionConfig {
    /// The server (`https://vault.example:8200`). Required, unless `addresses` is given.
    pub address: Option<String>,
    /// The node addresses of one Vault / OpenBao cluster, instead of `address`: reads go to
    /// any serving node, writes to the active one, a node that does not answer is skipped
    /// until it serves again, and reads carry the newest `X-Vault-Index` this process has
    /// seen (read-your-writes on every node). Not read from the environment (`VAULT_ADDR`
    /// stays one address). At least one; no duplicates; not together with `address`.
    #[serde(default)]
    pub addresses: Option<Vec<String>>,
    /// `X-Vault-Namespace` sent on every request (Vault Enterprise, OpenBao).
    pub namespace: Option<String>,
    /// The per-request timeout (default 10 s).
    #[serde(default, deserialize_with = "duration::opt")]
    pub request_timeout: Option<Duration>,
    /// PEM CA certificate files trusted besides the system roots (one path or a list).
    #[serde(default, deserialize_with = "paths")]
    pub ca_cert: Vec<PathBuf>,
    /// The client certificate chain (PEM file) for TLS client authentication.
    pub client_cert: Option<PathBuf>,
    /// Its private key (PEM), usually `file:/path`.
    pub client_key: Option<SecretRef>,
    /// Renew the token when this fraction of its lease has passed (0.1–0.9, default 2/3).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub renew_fraction: Option<f64>,
    /// The shortest time between two logins caused by Vault rejecting the token (default
    /// 10 s).
    #[serde(default, deserialize_with = "duration::opt")]
    pub min_relogin_interval: Option<Duration>,
    /// Build without I/O: log in or look the token up on first use (default false: at build,
    /// so a wrong token fails the build).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub lazy: Option<bool>,
    /// How to log in.
    #[serde(default)]
    pub auth: VaultAuthConfig,
}

/// `[stores.NAME.vault]` / `vault+https://host:port/<mount>/<prefix>`: a KV v2 or v1 mount.
/// Maps onto `kms_backend_vault::VaultClientBuilder` and
/// `kms_backend_vault::VaultStoreBuilder`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// See [`VaultConnectionConfig::address`].
    pub address: Option<String>,
    /// See [`VaultConnectionConfig::addresses`].
    #[serde(default)]
    pub addresses: Option<Vec<String>>,
    /// See [`VaultConnectionConfig::namespace`].
    pub namespace: Option<String>,
    /// See [`VaultConnectionConfig::request_timeout`].
    #[serde(default, deserialize_with = "duration::opt")]
    pub request_timeout: Option<Duration>,
    /// See [`VaultConnectionConfig::ca_cert`].
    #[serde(default, deserialize_with = "paths")]
    pub ca_cert: Vec<PathBuf>,
    /// See [`VaultConnectionConfig::client_cert`].
    pub client_cert: Option<PathBuf>,
    /// See [`VaultConnectionConfig::client_key`].
    pub client_key: Option<SecretRef>,
    /// See [`VaultConnectionConfig::renew_fraction`].
    #[serde(default, deserialize_with = "scalar::opt")]
    pub renew_fraction: Option<f64>,
    /// See [`VaultConnectionConfig::min_relogin_interval`].
    #[serde(default, deserialize_with = "duration::opt")]
    pub min_relogin_interval: Option<Duration>,
    /// See [`VaultConnectionConfig::lazy`].
    #[serde(default, deserialize_with = "scalar::opt")]
    pub lazy: Option<bool>,
    /// See [`VaultConnectionConfig::auth`].
    #[serde(default)]
    pub auth: VaultAuthConfig,
    /// The KV mount (default `secret`).
    pub mount: Option<String>,
    /// The KV version of the mount: 1 or 2 (default 2).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub kv_version: Option<u8>,
    /// Keeps every key under `<prefix>/` in the mount.
    pub prefix: Option<String>,
    /// What `remove` does on KV v2: `destroy_all` (default) or `soft_delete`.
    pub remove_mode: Option<VaultRemoveMode>,
    /// Each key is this one field of a secret (`password` of `app/db`) instead of the whole
    /// secret.
    pub field: Option<String>,
}

/// What `remove` does on KV v2.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum VaultRemoveMode {
    /// Delete metadata and every version.
    DestroyAll,
    /// Soft-delete the latest version.
    SoftDelete,
}

impl VaultConfig {
    /// The client half.
    pub fn connection(&self) -> VaultConnectionConfig {
        VaultConnectionConfig {
            address: self.address.clone(),
            addresses: self.addresses.clone(),
            namespace: self.namespace.clone(),
            request_timeout: self.request_timeout,
            ca_cert: self.ca_cert.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
            renew_fraction: self.renew_fraction,
            min_relogin_interval: self.min_relogin_interval,
            lazy: self.lazy,
            auth: self.auth.clone(),
        }
    }
}

#[cfg(any(feature = "vault", feature = "metrics"))]
impl VaultConnectionConfig {
    /// These options with the unset ones taken from the `vault` CLI's variables, which
    /// `lookup` reads (the process environment, in a build): `VAULT_ADDR` (address),
    /// `VAULT_NAMESPACE`, `VAULT_CACERT` (`ca_cert`) and, for the `token` method only,
    /// `VAULT_TOKEN`, which becomes the reference `env:VAULT_TOKEN` (read when the client is
    /// built). Each fills its option only when no configuration source (URI, file, `KMS_…`
    /// override) set it; empty counts as unset.
    pub(crate) fn with_vault_variables(&self, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let mut c = self.clone();
        if c.address.is_none() && c.addresses.is_none() {
            c.address = get("VAULT_ADDR");
        }
        if c.namespace.is_none() {
            c.namespace = get("VAULT_NAMESPACE");
        }
        if c.ca_cert.is_empty()
            && let Some(path) = get("VAULT_CACERT")
        {
            c.ca_cert.push(PathBuf::from(path));
        }
        let token_method = matches!(c.auth.method, None | Some(VaultAuthMethod::Token));
        if token_method && c.auth.token.is_none() && get("VAULT_TOKEN").is_some() {
            c.auth.token = Some(SecretRef::env("VAULT_TOKEN"));
        }
        c
    }
}

/// The process environment, as `VaultConnectionConfig::with_vault_variables` reads it.
#[cfg(any(feature = "vault", feature = "metrics"))]
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn paths<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(PathBuf),
        Many(Vec<PathBuf>),
    }
    match OneOrMany::deserialize(d).map_err(|_| {
        serde::de::Error::custom("invalid value: expected a file path or a list of file paths")
    })? {
        OneOrMany::One(p) => Ok(vec![p]),
        OneOrMany::Many(v) => Ok(v),
    }
}

#[cfg(feature = "vault")]
pub(crate) use build::VaultPlan;
#[cfg(all(feature = "vault", feature = "envelope"))]
pub(crate) use build::build_client;

#[cfg(feature = "vault")]
mod build {
    use std::sync::Arc;

    use kms_backend_vault::{KvVersion, RemoveMode, VaultAuth, VaultClient, VaultStore};
    use kms_core::{KeyStore, Result};
    use secrecy::ExposeSecret;

    use super::{VaultAuthMethod, VaultConfig, VaultConnectionConfig, VaultRemoveMode};
    use crate::config::at::At;
    use crate::error::{config_error, while_applying};

    /// Builds a client and (unless `lazy`) logs in; `base` is the dotted path of the
    /// connection table (`vault` or `envelope.vault`). Options no source set come from the
    /// `vault` CLI's variables (see `VaultConnectionConfig::with_vault_variables`).
    pub(crate) async fn build_client(
        c: &VaultConnectionConfig,
        at: &At,
        base: &str,
    ) -> Result<VaultClient> {
        let c = &c.with_vault_variables(super::process_env);
        let key = |k: &str| at.key(&format!("{base}.{k}"));
        let mut builder = match (&c.address, &c.addresses) {
            (Some(_), Some(_)) => {
                return Err(config_error(
                    &key("addresses"),
                    "give either `address` (one server) or `addresses` (a cluster's nodes), \
                     not both",
                ));
            }
            (None, Some(list)) => {
                if list.is_empty() {
                    return Err(config_error(
                        &key("addresses"),
                        "invalid value []: expected at least one node address",
                    ));
                }
                VaultClient::builder(&list[0]).addresses(list.iter().cloned())
            }
            (Some(address), None) => VaultClient::builder(address),
            (None, None) => {
                return Err(config_error(
                    &key("address"),
                    "missing: the Vault server address (`https://vault.example:8200`) is \
                     required (set here, or VAULT_ADDR), or a cluster's `addresses`",
                ));
            }
        };
        builder = builder.auth(auth(c, at, base)?);
        if let Some(ns) = &c.namespace {
            builder = builder.namespace(ns.clone());
        }
        if let Some(t) = c.request_timeout {
            if t.is_zero() {
                return Err(config_error(
                    &key("request_timeout"),
                    "invalid duration 0s: expected more than zero",
                ));
            }
            builder = builder.timeout(t);
        }
        for path in &c.ca_cert {
            let pem = std::fs::read(path).map_err(|e| {
                config_error(
                    &key("ca_cert"),
                    format_args!("cannot read {}: {}", path.display(), e.kind()),
                )
            })?;
            builder = builder.ca_cert_pem(pem);
        }
        match (&c.client_cert, &c.client_key) {
            (None, None) => {}
            (Some(cert), Some(k)) => {
                let mut pem = std::fs::read_to_string(cert).map_err(|e| {
                    config_error(
                        &key("client_cert"),
                        format_args!("cannot read {}: {}", cert.display(), e.kind()),
                    )
                })?;
                if !pem.ends_with('\n') {
                    pem.push('\n');
                }
                pem.push_str(k.resolve(&key("client_key"))?.expose_secret());
                builder = builder.client_identity_pem(pem);
            }
            (Some(_), None) => {
                return Err(config_error(
                    &key("client_key"),
                    "missing: `client_cert` needs its private key in `client_key`",
                ));
            }
            (None, Some(_)) => {
                return Err(config_error(
                    &key("client_cert"),
                    "missing: `client_key` needs its certificate chain in `client_cert`",
                ));
            }
        }
        if let Some(f) = c.renew_fraction {
            if !(0.1..=0.9).contains(&f) {
                return Err(config_error(
                    &key("renew_fraction"),
                    format_args!("invalid value {f}: expected a fraction from 0.1 to 0.9"),
                ));
            }
            builder = builder.renew_fraction(f);
        }
        if let Some(d) = c.min_relogin_interval {
            builder = builder.min_relogin_interval(d);
        }
        let address_key = if c.addresses.is_some() {
            key("addresses")
        } else {
            key("address")
        };
        if c.lazy == Some(true) {
            // No I/O: the login or token lookup happens on first use.
            builder
                .build_lazy()
                .map_err(|e| while_applying(&address_key, e))
        } else {
            builder
                .build()
                .await
                .map_err(|e| while_applying(&address_key, e))
        }
    }

    fn auth(c: &VaultConnectionConfig, at: &At, base: &str) -> Result<VaultAuth> {
        let a = &c.auth;
        let key = |k: &str| at.key(&format!("{base}.auth.{k}"));
        let method = a.method.unwrap_or(VaultAuthMethod::Token);
        let unused = |name: &str, set: bool| -> Result<()> {
            if set {
                Err(config_error(
                    &key(name),
                    format_args!("not used by auth method `{}`", method_name(method)),
                ))
            } else {
                Ok(())
            }
        };
        let required = |name: &str, what: &str| {
            config_error(
                &key(name),
                format_args!(
                    "missing: auth method `{}` needs {what}",
                    method_name(method)
                ),
            )
        };
        match method {
            VaultAuthMethod::Token => {
                unused("role_id", a.role_id.is_some())?;
                unused("secret_id", a.secret_id.is_some())?;
                unused("role", a.role.is_some())?;
                unused("jwt_path", a.jwt_path.is_some())?;
                unused("mount", a.mount.is_some())?;
                let token = a.token.as_ref().ok_or_else(|| {
                    required(
                        "token",
                        "a token (`env:NAME`, `file:/path`), and VAULT_TOKEN is not set",
                    )
                })?;
                Ok(VaultAuth::token(
                    token.resolve(&key("token"))?.expose_secret(),
                ))
            }
            VaultAuthMethod::Approle => {
                unused("token", a.token.is_some())?;
                unused("role", a.role.is_some())?;
                unused("jwt_path", a.jwt_path.is_some())?;
                let role_id = a
                    .role_id
                    .as_ref()
                    .ok_or_else(|| required("role_id", "a role id"))?;
                let secret_id = a.secret_id.as_ref().ok_or_else(|| {
                    required("secret_id", "a secret id (`env:NAME`, `file:/path`)")
                })?;
                let mut auth = VaultAuth::app_role(
                    role_id.resolve(&key("role_id"))?.expose_secret(),
                    secret_id.resolve(&key("secret_id"))?.expose_secret(),
                );
                if let Some(m) = &a.mount {
                    auth = auth.with_mount(m.clone());
                }
                Ok(auth)
            }
            VaultAuthMethod::Kubernetes => {
                unused("token", a.token.is_some())?;
                unused("role_id", a.role_id.is_some())?;
                unused("secret_id", a.secret_id.is_some())?;
                let role = a
                    .role
                    .as_ref()
                    .ok_or_else(|| required("role", "a Vault role"))?;
                let mut auth = VaultAuth::kubernetes(role.clone());
                if let Some(m) = &a.mount {
                    auth = auth.with_mount(m.clone());
                }
                if let Some(p) = &a.jwt_path {
                    auth = auth.with_jwt_path(p.clone());
                }
                Ok(auth)
            }
        }
    }

    fn method_name(m: VaultAuthMethod) -> &'static str {
        match m {
            VaultAuthMethod::Token => "token",
            VaultAuthMethod::Approle => "approle",
            VaultAuthMethod::Kubernetes => "kubernetes",
        }
    }

    /// A Vault store's options, its own checked (so a typo never costs a login), and where they
    /// came from: the client is
    /// made by [`connect`](Self::connect), the store over it by [`store`](Self::store).
    pub(crate) struct VaultPlan {
        at: At,
        connection: VaultConnectionConfig,
        version: KvVersion,
        mount: Option<String>,
        prefix: Option<String>,
        remove: Option<RemoveMode>,
        field: Option<String>,
    }

    impl VaultPlan {
        /// Checks the store's own options.
        pub(crate) fn new(v: &VaultConfig, at: &At) -> Result<Self> {
            let version = match v.kv_version {
                None | Some(2) => KvVersion::V2,
                Some(1) => KvVersion::V1,
                Some(other) => {
                    return Err(config_error(
                        &at.key("vault.kv_version"),
                        format_args!("invalid value {other}: expected 1 or 2"),
                    ));
                }
            };
            if v.field.as_deref() == Some("") {
                return Err(config_error(
                    &at.key("vault.field"),
                    "invalid value \"\": expected a field name such as `password`",
                ));
            }
            if let Some(m) = &v.mount
                && m.trim_matches('/').is_empty()
            {
                return Err(config_error(
                    &at.key("vault.mount"),
                    "invalid value \"\": expected a mount path such as `secret`",
                ));
            }
            let prefix = match &v.prefix {
                Some(p) => {
                    let trimmed = p.trim_end_matches('/');
                    kms_core::KeyName::new(trimmed).map_err(|e| {
                        config_error(
                            &at.key("vault.prefix"),
                            format_args!("invalid prefix {p:?}: {}", e.message()),
                        )
                    })?;
                    Some(trimmed.to_owned())
                }
                None => None,
            };
            let remove = match v.remove_mode {
                Some(VaultRemoveMode::SoftDelete) if version == KvVersion::V1 => {
                    return Err(config_error(
                        &at.key("vault.remove_mode"),
                        "`soft_delete` needs KV v2 (`kv_version = 2`)",
                    ));
                }
                Some(VaultRemoveMode::SoftDelete) => Some(RemoveMode::SoftDelete),
                Some(VaultRemoveMode::DestroyAll) => Some(RemoveMode::DestroyAll),
                None => None,
            };

            Ok(Self {
                at: at.clone(),
                connection: v.connection(),
                version,
                mount: v.mount.clone(),
                prefix,
                remove,
                field: v.field.clone(),
            })
        }

        /// Builds and logs in the client.
        pub(crate) async fn connect(&self) -> Result<VaultClient> {
            build_client(&self.connection, &self.at, "vault").await
        }

        /// The KV store over `client`.
        pub(crate) fn store(&self, client: &VaultClient) -> Result<Arc<dyn KeyStore>> {
            let mut builder = VaultStore::builder(client.clone()).kv_version(self.version);
            if let Some(m) = &self.mount {
                builder = builder.mount(m.clone());
            }
            if let Some(p) = &self.prefix {
                builder = builder.prefix(p.clone());
            }
            if let Some(mode) = self.remove {
                builder = builder.remove_mode(mode);
            }
            if let Some(f) = &self.field {
                builder = builder.field(f.clone());
            }
            let store = builder
                .build()
                .map_err(|e| while_applying(&self.at.key("vault"), e))?;
            Ok(Arc::new(store))
        }
    }
}
