//! The backend of a store: its options checked ([`BackendPlan::new`], nothing reached), then
//! opened ([`BackendPlan::open`]: a Vault login, the AWS credential chain, a keyring).

use std::sync::Arc;

use kms_core::{KeyStore, Result};

use super::StoreConfig;
use super::at::At;
#[cfg(feature = "envelope")]
use super::envelope::Shared;
use crate::error::config_error;
#[cfg(not(all(feature = "vault", feature = "aws", feature = "keyring")))]
use crate::error::not_compiled;

/// A backend whose options are checked.
pub(crate) enum BackendPlan {
    /// The in-memory store, built (there is nothing to reach).
    Memory(Arc<dyn KeyStore>),
    /// Vault / OpenBao KV.
    #[cfg(feature = "vault")]
    Vault(Box<super::vault::VaultPlan>),
    /// AWS Secrets Manager.
    #[cfg(feature = "aws")]
    Aws(Box<super::aws::AwsPlan>),
    /// The OS keyring.
    #[cfg(feature = "keyring")]
    Keyring(super::keyring::KeyringPlan),
}

/// An open backend.
pub(crate) struct Opened {
    /// The store.
    pub(crate) store: Arc<dyn KeyStore>,
    /// Its connection, for an envelope provider of the same service to share.
    #[cfg(feature = "envelope")]
    pub(crate) shared: Shared,
}

impl Opened {
    /// A backend with no connection to share.
    fn alone(store: Arc<dyn KeyStore>) -> Self {
        Self {
            store,
            #[cfg(feature = "envelope")]
            shared: Shared::default(),
        }
    }
}

impl BackendPlan {
    /// Checks the one backend table of `c`.
    pub(crate) fn new(c: &StoreConfig, at: &At) -> Result<Self> {
        let missing = || config_error(&at.whole(), "missing: a backend table");
        match c.backend_name(at)? {
            "memory" => {
                let m = c.memory.as_ref().ok_or_else(missing)?;
                Ok(Self::Memory(m.build(at)?))
            }
            "vault" => {
                #[cfg(feature = "vault")]
                {
                    let v = c.vault.as_ref().ok_or_else(missing)?;
                    Ok(Self::Vault(Box::new(super::vault::VaultPlan::new(v, at)?)))
                }
                #[cfg(not(feature = "vault"))]
                Err(not_compiled(&at.key("vault"), "vault", "vault"))
            }
            "aws" => {
                #[cfg(feature = "aws")]
                {
                    let a = c.aws.as_ref().ok_or_else(missing)?;
                    Ok(Self::Aws(Box::new(super::aws::AwsPlan::new(a, at)?)))
                }
                #[cfg(not(feature = "aws"))]
                Err(not_compiled(&at.key("aws"), "aws", "aws"))
            }
            "keyring" => {
                #[cfg(feature = "keyring")]
                {
                    let k = c.keyring.as_ref().ok_or_else(missing)?;
                    Ok(Self::Keyring(super::keyring::KeyringPlan::new(k, at)?))
                }
                #[cfg(not(feature = "keyring"))]
                Err(not_compiled(&at.key("keyring"), "keyring", "keyring"))
            }
            other => Err(config_error(&at.key(other), "unknown backend")),
        }
    }

    /// What tells this store's backend apart from another's: every backend option (secrets
    /// as their references, inline ones redacted), with the Vault options the `vault` CLI's
    /// variables fill in. Two configurations with the same identity reach the same data the
    /// same way; the metrics registry lets only those share a label set.
    #[cfg(feature = "metrics")]
    pub(crate) fn identity(c: &StoreConfig) -> String {
        if let Some(v) = &c.vault {
            let connection = v
                .connection()
                .with_vault_variables(super::vault::process_env);
            return format!(
                "vault {connection:?} mount={:?} kv_version={:?} prefix={:?} remove_mode={:?} field={:?}",
                v.mount, v.kv_version, v.prefix, v.remove_mode, v.field
            );
        }
        format!("{:?} {:?} {:?}", c.memory, c.aws, c.keyring)
    }

    /// Opens the backend: this is where it is first reached.
    pub(crate) async fn open(self) -> Result<Opened> {
        match self {
            Self::Memory(store) => Ok(Opened::alone(store)),
            #[cfg(feature = "vault")]
            Self::Vault(v) => {
                let client = v.connect().await?;
                Ok(Opened {
                    store: v.store(&client)?,
                    #[cfg(feature = "envelope")]
                    shared: Shared::vault(client),
                })
            }
            #[cfg(feature = "aws")]
            Self::Aws(a) => {
                let sdk = a.connect().await?;
                Ok(Opened {
                    store: a.store(&sdk)?,
                    #[cfg(feature = "envelope")]
                    shared: Shared::aws(sdk),
                })
            }
            #[cfg(feature = "keyring")]
            Self::Keyring(k) => Ok(Opened::alone(k.open().await?)),
        }
    }
}
