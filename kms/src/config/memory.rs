//! `memory`: kms-core's [`MemoryStore`].

use std::sync::Arc;

use kms_core::{KeyStore, MemoryStore};
use serde::Deserialize;

use crate::scalar;

/// `[stores.NAME.memory]` / `memory://`: the in-process store (tests, development, caches of
/// secrets fetched elsewhere). Maps onto [`kms_core::MemoryStoreBuilder`].
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// Versions kept per key, the current one included (default 10, at least 1).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub max_versions: Option<usize>,
    /// The largest value accepted, in bytes (default 64 KiB).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub max_value_len: Option<usize>,
}

impl MemoryConfig {
    /// Builds the store.
    pub(crate) fn build(&self, at: &super::at::At) -> kms_core::Result<Arc<dyn KeyStore>> {
        let mut builder = MemoryStore::builder();
        if let Some(n) = self.max_versions {
            if n == 0 {
                return Err(crate::error::config_error(
                    &at.key("memory.max_versions"),
                    "invalid value 0: expected at least 1 (the current version)",
                ));
            }
            builder = builder.max_versions(n);
        }
        if let Some(n) = self.max_value_len {
            builder = builder.max_value_len(n);
        }
        Ok(Arc::new(builder.build()))
    }
}
