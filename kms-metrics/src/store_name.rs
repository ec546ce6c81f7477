//! [`StoreName`]: the `store` label, a name the service gives each store it instruments.

use std::fmt;
use std::sync::Arc;

use kms_core::{Error, ErrorKind, Result};

/// The most distinct store names one [`KmsMetrics`](crate::KmsMetrics) accepts: the `store`
/// label stays bounded whatever a configuration file says.
pub const MAX_STORE_NAMES: usize = 32;

/// The longest store name, in bytes.
pub const MAX_STORE_NAME_LEN: usize = 48;

/// The value of the `store` label: which store of a backend type a series belongs to, so two
/// Vault clusters (both `backend="vault"`) keep separate series.
///
/// Chosen by the service, never derived from requests: get one from
/// [`KmsMetrics::store_name`](crate::KmsMetrics::store_name), which checks it
/// (1–[`MAX_STORE_NAME_LEN`] bytes of `a-z`, `0-9`, `_`, `-`, `.`) and allows at most
/// [`MAX_STORE_NAMES`] distinct names. Without one, a store's `store` label is its backend
/// label (`vault`, `aws`, ...).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StoreName(pub(crate) Arc<str>);

impl StoreName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks the characters and length; the count is checked by `KmsMetrics::store_name`.
    pub(crate) fn parse(name: &str) -> Result<Self> {
        let ok = !name.is_empty()
            && name.len() <= MAX_STORE_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b));
        if !ok {
            return Err(Error::new(
                ErrorKind::Configuration,
                format!(
                    "store_name: '{}' is not 1-{MAX_STORE_NAME_LEN} characters of a-z, 0-9, '_', '-', '.'",
                    name.escape_debug()
                ),
            ));
        }
        Ok(Self(name.into()))
    }
}

impl fmt::Display for StoreName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StoreName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreName({:?})", &*self.0)
    }
}

/// The `store` label value of a store with `name` (or, unnamed, its backend label).
pub(crate) fn store_label(name: Option<&StoreName>, backend: &'static str) -> Arc<str> {
    name.map_or_else(|| Arc::from(backend), |n| n.0.clone())
}
