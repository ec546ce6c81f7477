//! [`Config`]: named stores from TOML, the environment and URIs; [`StoreConfig`]: one store,
//! one typed table per backend and layer (each in its own module, mapping onto one builder).

pub mod aws;
pub mod cache;
pub mod envelope;
pub mod failover;
pub mod keyring;
pub mod memory;
pub mod metrics;
pub mod resilience;
pub mod validate;
pub mod vault;

mod at;
mod backend;
mod opener;
mod plan;
mod stack;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use kms_core::Result;
use serde::Deserialize;

use self::at::At;
use crate::error::{config_error, config_error_at_top};

pub use opener::Opener;
pub use stack::Stack;

/// One store: exactly one backend table and any layers.
///
/// Deserialised from `[stores.NAME]` (or from a URI, whose options are the same keys). Every
/// table rejects unknown keys. Options left unset keep the builder's own default, so a
/// default is stated once, by the builder.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// kms-core's in-memory store.
    pub memory: Option<memory::MemoryConfig>,
    /// Vault / OpenBao KV.
    pub vault: Option<vault::VaultConfig>,
    /// AWS Secrets Manager.
    pub aws: Option<aws::AwsConfig>,
    /// The OS keyring.
    pub keyring: Option<keyring::KeyringConfig>,
    /// A value-size limit at the top of the stack.
    pub validate: Option<validate::ValidateConfig>,
    /// The read cache.
    pub cache: Option<cache::CacheConfig>,
    /// Envelope encryption.
    pub envelope: Option<envelope::EnvelopeConfig>,
    /// Failover to other stores of the configuration (read replicas).
    pub failover: Option<failover::FailoverConfig>,
    /// The circuit breaker.
    pub breaker: Option<resilience::BreakerConfig>,
    /// Retries.
    pub retry: Option<resilience::RetryConfig>,
    /// Per-attempt deadlines.
    pub timeout: Option<resilience::TimeoutConfig>,
    /// Prometheus metrics, spans and audit events.
    pub metrics: Option<metrics::MetricsConfig>,
}

impl StoreConfig {
    /// Parses a store from a URI (see the crate docs for the grammar).
    ///
    /// # Errors
    ///
    /// [`Configuration`](kms_core::ErrorKind::Configuration) naming the offending query key
    /// (an unknown key, a bad value) or the scheme.
    pub fn from_uri(uri: &str) -> Result<Self> {
        let (table, backend) = crate::uri::to_table(uri)?;
        Self::from_table(table, &At::uri(backend))
    }

    pub(crate) fn from_table(table: toml::Table, at: &At) -> Result<Self> {
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            let message = e.into_inner().message().to_owned();
            config_error(&at.key(&path), message)
        })
    }

    /// The one backend table given, by name.
    pub(crate) fn backend_name(&self, at: &At) -> Result<&'static str> {
        let given: Vec<&'static str> = [
            ("memory", self.memory.is_some()),
            ("vault", self.vault.is_some()),
            ("aws", self.aws.is_some()),
            ("keyring", self.keyring.is_some()),
        ]
        .into_iter()
        .filter_map(|(n, set)| set.then_some(n))
        .collect();
        match given.as_slice() {
            [one] => Ok(one),
            [] => Err(config_error(
                &at.whole(),
                "missing: a backend table, one of `memory`, `vault`, `aws`, `keyring` (or a `uri`)",
            )),
            many => Err(config_error(
                &at.whole(),
                format_args!(
                    "several backends given ({}): expected exactly one",
                    many.join(", ")
                ),
            )),
        }
    }
}

/// Named stores: `[stores.NAME]` tables from a TOML file, overridden by `KMS_…` environment
/// variables.
///
/// ```toml
/// default = "payments"            # optional; the only store is the default anyway
///
/// [stores.payments]
/// uri = "vault+https://vault.example:8200/secret/payments?auth.token=env:VAULT_TOKEN"
///
/// [stores.payments.cache]
/// ttl = "5m"
///
/// [stores.signing.memory]
/// ```
///
/// `Debug` shows store names and typed options (secrets redacted), never the raw text.
#[derive(Clone)]
pub struct Config {
    raw: toml::Table,
    default: Option<String>,
    stores: BTreeMap<String, StoreConfig>,
}

/// The raw text may hold inline secrets: every string in it is zeroed when the configuration
/// is dropped (the typed options hold secrets as zeroizing `SecretString`s already).
impl Drop for Config {
    fn drop(&mut self) {
        fn wipe(value: &mut toml::Value) {
            match value {
                toml::Value::String(s) => zeroize::Zeroize::zeroize(s),
                toml::Value::Array(items) => items.iter_mut().for_each(wipe),
                toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| wipe(v)),
                _ => {}
            }
        }
        self.raw.iter_mut().for_each(|(_, v)| wipe(v));
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("default", &self.default)
            .field("stores", &self.stores)
            .finish()
    }
}

impl Config {
    /// Parses TOML text.
    ///
    /// # Errors
    ///
    /// [`Configuration`](kms_core::ErrorKind::Configuration) for TOML syntax errors (with the
    /// line), and for every invalid option, naming its key.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let raw: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            // The parser's message quotes no value: a secret on a bad line stays unshown.
            config_error_at_top(format_args!("invalid TOML{at}: {}", e.message().trim()))
        })?;
        Self::from_raw(raw)
    }

    /// Reads and parses a TOML file.
    ///
    /// # Errors
    ///
    /// As [`from_toml_str`](Self::from_toml_str), and
    /// [`Configuration`](kms_core::ErrorKind::Configuration) if the file cannot be read.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            config_error_at_top(format_args!("cannot read {}: {}", path.display(), e.kind()))
        })?;
        Self::from_toml_str(&text).map_err(|e| {
            kms_core::Error::new(e.kind(), format!("{} (in {})", e.message(), path.display()))
        })
    }

    /// The 12-factor way: the file named by `KMS_CONFIG` (if set), then every
    /// `KMS_STORES__<NAME>__<KEY>__…` and `KMS_DEFAULT` variable on top (see the crate docs).
    /// Any other `KMS_` variable that nothing reads is an error (see
    /// [`with_vars`](Self::with_vars)).
    ///
    /// # Errors
    ///
    /// As [`from_file`](Self::from_file) and [`with_vars`](Self::with_vars).
    pub fn from_env() -> Result<Self> {
        let base = match std::env::var_os("KMS_CONFIG") {
            Some(path) => Self::from_file(path)?,
            None => Self::from_raw(toml::Table::new())?,
        };
        base.with_env()
    }

    /// Applies the process environment's `KMS_STORES__…` / `KMS_DEFAULT` variables on top,
    /// refusing `KMS_` variables that nothing reads (see [`with_vars`](Self::with_vars)).
    ///
    /// # Errors
    ///
    /// As [`with_vars`](Self::with_vars).
    pub fn with_env(self) -> Result<Self> {
        self.with_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// Applies these variables (name, value) on top, as [`with_env`](Self::with_env) does with
    /// the process environment. Variables not starting with `KMS_` (in any case) are ignored;
    /// of the rest, `KMS_STORES__…` and `KMS_DEFAULT` are overrides, and `KMS_CONFIG`, the
    /// CLI's `KMS_STORE` and `KMS_PASSPHRASE`, this workspace's scripts' variables
    /// (`KMS_TEST_…`, `KMS_TOOLS`, …) and variables named by an `env:` reference (in the
    /// configuration or in those variables) are read elsewhere.
    ///
    /// # Errors
    ///
    /// [`Configuration`](kms_core::ErrorKind::Configuration) for a malformed variable name,
    /// a key that is not a table where the variable needs one, any invalid option, and any
    /// other `KMS_` variable that looks like configuration (`KMS_CACHE_TTL`, `KMS_CACHE__TTL`,
    /// `KMS_VAULT_ADDR`, `KMS_=x`, a lower-case `kms_stores__…`), naming it: it would change
    /// nothing. Any other unexplained `KMS_` variable (`KMS_MASTER_KEY` that no `env:` names)
    /// is a warning naming it, on the tracing target `kms::config`.
    pub fn with_vars<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Result<Self>
    where
        K: AsRef<str>,
        V: Into<String>,
    {
        let leftovers = crate::env::apply(&mut self.raw, vars)?;
        let config = Self::from_raw(std::mem::take(&mut self.raw))?;
        leftovers.check(&config.raw)?;
        Ok(config)
    }

    fn from_raw(raw: toml::Table) -> Result<Self> {
        // Owned by a `Config` at once, so the raw strings are wiped on every return path.
        let mut config = Self {
            raw,
            default: None,
            stores: BTreeMap::new(),
        };
        let (default, stores) = Self::typed(&config.raw)?;
        config.default = default;
        config.stores = stores;
        Ok(config)
    }

    #[allow(clippy::type_complexity)]
    fn typed(raw: &toml::Table) -> Result<(Option<String>, BTreeMap<String, StoreConfig>)> {
        for key in raw.keys() {
            if key != "default" && key != "stores" {
                return Err(config_error(
                    key,
                    "unknown key: expected `default` or `stores` at the top level",
                ));
            }
        }
        let default = match raw.get("default") {
            None => None,
            Some(toml::Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(config_error(
                    "default",
                    format_args!("invalid type {}: expected a store name", other.type_str()),
                ));
            }
        };
        let mut stores = BTreeMap::new();
        match raw.get("stores") {
            None => {}
            Some(toml::Value::Table(t)) => {
                for (name, value) in t {
                    check_store_name(name)?;
                    let at = At::store(name);
                    let toml::Value::Table(table) = value else {
                        return Err(config_error(
                            &at.whole(),
                            format_args!("invalid type {}: expected a table", value.type_str()),
                        ));
                    };
                    let table = expand_uri(table.clone(), &at)?;
                    stores.insert(name.clone(), StoreConfig::from_table(table, &at)?);
                }
            }
            Some(other) => {
                return Err(config_error(
                    "stores",
                    format_args!(
                        "invalid type {}: expected a table of stores",
                        other.type_str()
                    ),
                ));
            }
        }
        if let Some(d) = &default
            && !stores.contains_key(d)
        {
            return Err(config_error(
                "default",
                format_args!(
                    "no store named {d:?}: expected one of {}",
                    names(stores.keys())
                ),
            ));
        }
        Ok((default, stores))
    }

    /// The store names, sorted.
    pub fn store_names(&self) -> impl Iterator<Item = &str> {
        self.stores.keys().map(String::as_str)
    }

    /// The typed options of a store.
    pub fn store(&self, name: &str) -> Option<&StoreConfig> {
        self.stores.get(name)
    }

    /// The default store: `default`, or the only store when there is one.
    pub fn default_store(&self) -> Option<&str> {
        match &self.default {
            Some(d) => Some(d),
            None if self.stores.len() == 1 => self.stores.keys().next().map(String::as_str),
            None => None,
        }
    }

    pub(crate) fn require_default(&self) -> Result<&str> {
        self.default_store().ok_or_else(|| {
            config_error(
                "default",
                format_args!(
                    "missing: several stores and no `default`; name one of {}",
                    names(self.stores.keys())
                ),
            )
        })
    }

    pub(crate) fn require(&self, name: &str) -> Result<&StoreConfig> {
        self.stores.get(name).ok_or_else(|| {
            config_error(
                &format!("stores.{name}"),
                format_args!(
                    "no such store: expected one of {}",
                    names(self.stores.keys())
                ),
            )
        })
    }
}

fn names<'a>(it: impl Iterator<Item = &'a String>) -> String {
    let list: Vec<String> = it.map(|n| format!("`{n}`")).collect();
    if list.is_empty() {
        "(no stores are configured)".to_owned()
    } else {
        list.join(", ")
    }
}

/// Store names: lower-case letters, digits, `_` and `-` (the environment can address those
/// without `-`).
fn check_store_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(config_error(
            &format!("stores.{name}"),
            "invalid store name: expected lower-case letters, digits, `_` and `-`",
        ))
    }
}

/// Replaces a `uri` key by the table it stands for, with the table's own keys on top.
fn expand_uri(mut table: toml::Table, at: &At) -> Result<toml::Table> {
    let Some(uri) = table.remove("uri") else {
        return Ok(table);
    };
    let toml::Value::String(uri) = uri else {
        return Err(config_error(
            &at.key("uri"),
            "invalid type: expected a URI string",
        ));
    };
    let (mut base, _) = crate::uri::to_table(&uri).map_err(|e| {
        kms_core::Error::new(
            e.kind(),
            format!("{} (in `{}`)", e.message(), at.key("uri")),
        )
    })?;
    merge(&mut base, table);
    Ok(base)
}

/// Deep merge: tables merge key by key, anything else in `top` replaces what `base` had.
pub(crate) fn merge(base: &mut toml::Table, top: toml::Table) {
    for (k, v) in top {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => merge(b, t),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}
