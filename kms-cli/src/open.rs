//! Which store a command talks to: `--store URI`, or `--config FILE` + `--name NAME`, or the
//! environment (`KMS_STORE`, `KMS_CONFIG`, `KMS_STORES__…`), opened with the `kms` facade.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use kms::{Config, KeyStore, Opener, StoreConfig};

use crate::exit::{CliResult, Failure};
use crate::redact::OptSpec;

/// Where the global store options point. `Debug` shows the URI as
/// [`crate::redact::store_spec`] does.
#[derive(Clone, Default)]
pub struct Target {
    /// `--store` / `KMS_STORE`: a URI.
    pub store: Option<String>,
    /// `--config` / `KMS_CONFIG`: a TOML file.
    pub config: Option<PathBuf>,
    /// `--name`: a store of the configuration.
    pub name: Option<String>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("store", &OptSpec(self.store.as_deref()))
            .field("config", &self.config)
            .field("name", &self.name)
            .finish()
    }
}

/// A store opened for one field of its secrets (`--field NAME`).
#[derive(Clone, Debug)]
pub enum FieldStore {
    /// The backend selects the field itself (Vault's `field` option): `get` reads the field,
    /// `store` sets it and keeps the secret's other fields, in Vault's own shape and with a
    /// check-and-set, so the secret stays readable by `bao kv get -field=NAME`.
    Native(Arc<dyn KeyStore>),
    /// The store holds whole values: the command reads the field out of a JSON-object value
    /// and writes the whole object back (see [`crate::field`]).
    Whole(Arc<dyn KeyStore>),
}

/// A store named by the global options, or on the command line, before it is opened.
enum Source {
    /// A URI.
    Uri(String),
    /// A store of a configuration (`None`: its default store).
    Named(Box<Config>, Option<String>),
}

impl Target {
    /// Opens the store of the global options.
    ///
    /// # Errors
    ///
    /// [`crate::exit::Exit::Usage`] when no store is named; what the facade returns
    /// (a `Configuration` error, exit 2; a login that fails, exit 4 …).
    pub async fn open(&self) -> CliResult<Arc<dyn KeyStore>> {
        self.source()?.open().await
    }

    /// Opens the store of the global options to work on one `field` of its secrets: with
    /// the backend's own field selector where it has one (Vault), else whole.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); [`crate::exit::Exit::Usage`] when the store's configuration
    /// already selects another field.
    pub async fn open_field(&self, field: &str) -> CliResult<FieldStore> {
        self.source()?.open_field(field).await
    }

    /// The backend the global options name (`"vault"`, `"aws"` …), read from the
    /// configuration without opening anything; `None` when no store is named or the
    /// configuration cannot be read.
    pub fn backend(&self) -> Option<&'static str> {
        self.source().ok()?.backend()
    }

    /// Opens a store named on the command line (`migrate FROM TO`, `diff A B`, `copy --to`):
    /// a URI if it contains `://`, else a store of the configuration.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub async fn open_spec(&self, spec: &str) -> CliResult<Arc<dyn KeyStore>> {
        self.spec_source(spec)?.open().await
    }

    fn source(&self) -> CliResult<Source> {
        if let Some(uri) = &self.store {
            return Ok(Source::Uri(uri.clone()));
        }
        let config = self.load_config()?;
        if self.name.is_none() && config.store_names().next().is_none() {
            return Err(Failure::usage(
                "no store given: pass --store URI (or set KMS_STORE), or --config FILE (or KMS_CONFIG) with --name NAME",
            ));
        }
        Ok(Source::Named(Box::new(config), self.name.clone()))
    }

    fn spec_source(&self, spec: &str) -> CliResult<Source> {
        if spec.contains("://") {
            return Ok(Source::Uri(spec.to_owned()));
        }
        // A store name is a plain word; anything else is a mistyped URI (`vault+http:/host?…`),
        // which may hold a credential: refused without being shown.
        let plain = !spec.is_empty()
            && spec
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !plain {
            return Err(Failure::usage(
                "a store argument is neither a store URI (`scheme://…`) nor the name of a configured store (not shown: it may hold a credential)",
            ));
        }
        Ok(Source::Named(
            Box::new(self.load_config()?),
            Some(spec.to_owned()),
        ))
    }

    fn load_config(&self) -> CliResult<Config> {
        let config = match &self.config {
            Some(path) => Config::from_file(path)?.with_env()?,
            None => Config::from_env()?,
        };
        Ok(config)
    }
}

impl Source {
    async fn open(&self) -> CliResult<Arc<dyn KeyStore>> {
        let store = match self {
            Self::Uri(uri) => kms::open(uri).await?,
            Self::Named(config, Some(name)) => config.open(name).await?,
            Self::Named(config, None) => config.open_default().await?,
        };
        Ok(store)
    }

    /// The typed configuration of the store (parsed, nothing opened).
    fn store_config(&self) -> CliResult<(String, StoreConfig)> {
        match self {
            Self::Uri(uri) => Ok(("uri".to_owned(), StoreConfig::from_uri(uri)?)),
            Self::Named(config, name) => {
                let name = match name {
                    Some(n) => n.clone(),
                    None => config.default_store().map(str::to_owned).ok_or_else(|| {
                        Failure::usage(
                            "the configuration has several stores and no `default`: pass --name NAME",
                        )
                    })?,
                };
                let store = config.store(&name).cloned().ok_or_else(|| {
                    Failure::usage(format!(
                        "no store named {name:?} in the configuration (stores: {})",
                        config.store_names().collect::<Vec<_>>().join(", ")
                    ))
                })?;
                Ok((name, store))
            }
        }
    }

    fn backend(&self) -> Option<&'static str> {
        match self.store_config() {
            Ok((_, c)) => backend_of(&c),
            Err(_) => match self {
                Self::Uri(uri) => backend_of_scheme(uri),
                Self::Named(..) => None,
            },
        }
    }

    async fn open_field(&self, field: &str) -> CliResult<FieldStore> {
        let (name, mut config) = self.store_config()?;
        let Some(vault) = config.vault.as_mut() else {
            return Ok(FieldStore::Whole(self.open().await?));
        };
        match vault.field.as_deref() {
            Some(f) if f == field => return Ok(FieldStore::Native(self.open().await?)),
            Some(_) => {
                return Err(Failure::usage(
                    "the store's configuration already selects another field (its `field` option); --field cannot choose a second one",
                ));
            }
            None => {}
        }
        let store = match self {
            // A URI keeps its own error wording (keys named as in the URI): add the option
            // to its query rather than opening the parsed table.
            Self::Uri(uri) => {
                let sep = if uri.contains('?') { '&' } else { '?' };
                kms::open(&format!("{uri}{sep}field={}", percent_encode(field))).await?
            }
            Self::Named(..) => {
                vault.field = Some(field.to_owned());
                Opener::new()
                    .open_config(&name, &config)
                    .await?
                    .into_store()
            }
        };
        Ok(FieldStore::Native(store))
    }
}

/// The backend a store's configuration names.
fn backend_of(config: &StoreConfig) -> Option<&'static str> {
    [
        ("memory", config.memory.is_some()),
        ("vault", config.vault.is_some()),
        ("aws", config.aws.is_some()),
        ("keyring", config.keyring.is_some()),
    ]
    .into_iter()
    .find_map(|(name, given)| given.then_some(name))
}

/// The backend a URI's scheme names, for a URI whose options do not parse (the facade's
/// schemes, see its README).
fn backend_of_scheme(uri: &str) -> Option<&'static str> {
    let (scheme, _) = uri.split_once("://")?;
    match scheme {
        "memory" => Some("memory"),
        "vault" | "vault+http" | "vault+https" => Some("vault"),
        "aws-sm" => Some("aws"),
        "keyring" => Some("keyring"),
        _ => None,
    }
}

/// Every byte outside RFC 3986's unreserved set as `%XX`, so the text reads back exactly
/// whatever query decoding the facade applies.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backend_comes_from_the_configuration_without_io() {
        let target = |uri: &str| Target {
            store: Some(uri.to_owned()),
            ..Target::default()
        };
        assert_eq!(
            target("vault+http://127.0.0.1:1/secret?auth.token=x").backend(),
            Some("vault")
        );
        assert_eq!(target("memory://").backend(), Some("memory"));
        assert_eq!(target("memory://?nonsense=1").backend(), Some("memory"));
        assert_eq!(target("s3://bucket").backend(), None);
    }

    #[test]
    fn percent_encoding_keeps_unreserved_bytes_only() {
        assert_eq!(
            percent_encode("pass word+x&y=ü"),
            "pass%20word%2Bx%26y%3D%C3%BC"
        );
        assert_eq!(percent_encode("a-b.c_d~e"), "a-b.c_d~e");
    }

    #[test]
    fn debug_hides_the_uri_query() {
        let t = Target {
            store: Some("vault+http://h/secret?auth.token=T0P".to_owned()),
            ..Target::default()
        };
        assert!(!format!("{t:?}").contains("T0P"), "{t:?}");
    }
}
