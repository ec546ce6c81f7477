//! Which store a command talks to: `--store URI`, or `--config FILE` + `--name NAME`, or the
//! environment (`KMS_STORE`, `KMS_CONFIG`, `KMS_STORES__…`), opened with the `kms` facade.

use std::path::PathBuf;
use std::sync::Arc;

use kms::{Config, KeyStore};

use crate::exit::{CliResult, Failure};

/// Where the global store options point.
#[derive(Clone, Debug, Default)]
pub struct Target {
    /// `--store` / `KMS_STORE`: a URI.
    pub store: Option<String>,
    /// `--config` / `KMS_CONFIG`: a TOML file.
    pub config: Option<PathBuf>,
    /// `--name`: a store of the configuration.
    pub name: Option<String>,
}

impl Target {
    /// Opens the store of the global options.
    ///
    /// # Errors
    ///
    /// [`crate::exit::Exit::Usage`] when no store is named; what the facade returns
    /// (a `Configuration` error, exit 2; a login that fails, exit 4 …).
    pub async fn open(&self) -> CliResult<Arc<dyn KeyStore>> {
        if let Some(uri) = &self.store {
            return open_uri(uri).await;
        }
        let config = self.load_config()?;
        let store = match &self.name {
            Some(name) => config.open(name).await?,
            None => {
                if config.store_names().next().is_none() {
                    return Err(Failure::usage(
                        "no store given: pass --store URI (or set KMS_STORE), or --config FILE (or KMS_CONFIG) with --name NAME",
                    ));
                }
                config.open_default().await?
            }
        };
        Ok(store)
    }

    /// Opens a store named on the command line (`migrate FROM TO`, `diff A B`, `copy --to`):
    /// a URI if it contains `://`, else a store of the configuration.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub async fn open_spec(&self, spec: &str) -> CliResult<Arc<dyn KeyStore>> {
        if spec.contains("://") {
            return open_uri(spec).await;
        }
        Ok(self.load_config()?.open(spec).await?)
    }

    fn load_config(&self) -> CliResult<Config> {
        let config = match &self.config {
            Some(path) => Config::from_file(path)?.with_env()?,
            None => Config::from_env()?,
        };
        Ok(config)
    }
}

async fn open_uri(uri: &str) -> CliResult<Arc<dyn KeyStore>> {
    Ok(kms::open(uri).await?)
}
