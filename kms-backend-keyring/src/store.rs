//! [`KeyringStore`]: the [`KeyStore`] over one service of an OS keyring.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use keyring_core::{CredentialStore, Entry};
use kms_core::{
    Capabilities, Error, ErrorKind, KeyName, KeyPrefix, KeyStore, Result, SecretMeta, SecretValue,
    StoredSecret,
};
use zeroize::Zeroizing;

use crate::builder::KeyringStoreBuilder;
use crate::error_map::map_error;
use crate::index::{INDEX_ACCOUNT, Index, IndexLock};
use crate::{BACKEND, blocking};

/// A [`KeyStore`] over one service of an OS keyring.
///
/// A key name is the entry's user/account, the service name is the entry's service. Every
/// keyring call runs on tokio's blocking pool. `list` reads a per-service index entry (see
/// [`crate::index`] for its concurrency guarantee). After every write the entry is read back
/// once; a keyring that accepts a write but does not keep it fails the `store` with
/// [`ErrorKind::Unavailable`]. No versions are kept.
#[derive(Clone)]
pub struct KeyringStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) service: String,
    pub(crate) label: &'static str,
    pub(crate) store: Arc<CredentialStore>,
    pub(crate) lock_file: PathBuf,
    pub(crate) capabilities: Capabilities,
}

impl KeyringStore {
    /// Starts configuring a store for entries under `service`.
    pub fn builder(service: impl Into<String>) -> KeyringStoreBuilder {
        KeyringStoreBuilder::new(service)
    }

    /// The service name entries live under.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Inner) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let inner = self.inner.clone();
        blocking(move || f(&inner)).await
    }
}

impl Inner {
    fn entry(&self, account: &str, what: &str) -> Result<Entry> {
        self.store
            .build(&self.service, account, None)
            .map_err(|e| map_error(e, what))
    }

    /// Reads the index; a missing entry is an empty index.
    fn read_index(&self) -> Result<Index> {
        let what = "reading the keyring index";
        match self.entry(INDEX_ACCOUNT, what)?.get_secret() {
            Ok(bytes) => Index::decode(&bytes),
            Err(keyring_core::Error::NoEntry) => Ok(Index::default()),
            Err(e) => Err(map_error(e, what)),
        }
    }

    /// Applies `change` to the index under the caller's lock; a corrupt index is rebuilt.
    fn update_index(&self, change: impl FnOnce(&mut Index)) -> Result<()> {
        let mut index = match self.read_index() {
            Ok(index) => index,
            Err(e) if e.kind() == ErrorKind::InvalidData => {
                tracing::warn!(service = %self.service, error = %e, "rebuilding the keyring index");
                Index::default()
            }
            Err(e) => return Err(e),
        };
        let before = index.clone();
        change(&mut index);
        if index == before {
            return Ok(());
        }
        let what = "writing the keyring index";
        let entry = self.entry(INDEX_ACCOUNT, what)?;
        if index.names.is_empty() {
            return match entry.delete_credential() {
                Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
                Err(e) => Err(map_error(e, what)),
            };
        }
        entry
            .set_secret(&index.encode())
            .map_err(|e| map_error(e, what))
    }

    fn store(&self, key: &KeyName, value: &SecretValue) -> Result<SecretMeta> {
        let what = format!("storing {key}");
        let _lock = IndexLock::acquire(&self.lock_file)?;
        let entry = self.entry(key.as_str(), &what)?;
        entry
            .set_secret(value.expose_secret())
            .map_err(|e| map_error(e, &what))?;
        let read_back = match entry.get_secret() {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(keyring_core::Error::NoEntry) => Zeroizing::new(Vec::new()),
            Err(e) => return Err(map_error(e, &format!("reading back {key}"))),
        };
        if read_back.as_slice() != value.expose_secret() {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "storing {key}: the {} keyring accepted the write but did not keep the value",
                    self.label
                ),
            )
            .with_backend(BACKEND));
        }
        self.update_index(|index| {
            index.names.insert(key.as_str().to_owned());
        })?;
        Ok(SecretMeta::default())
    }

    fn remove(&self, key: &KeyName) -> Result<()> {
        let what = format!("removing {key}");
        let _lock = IndexLock::acquire(&self.lock_file)?;
        let deleted = self.entry(key.as_str(), &what)?.delete_credential();
        // Drop the name from the index even if the entry was already gone (removed by hand).
        if matches!(deleted, Ok(()) | Err(keyring_core::Error::NoEntry)) {
            self.update_index(|index| {
                index.names.remove(key.as_str());
            })?;
        }
        deleted.map_err(|e| map_error(e, &what))
    }
}

#[async_trait]
impl KeyStore for KeyringStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities
    }

    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        let key = key.clone();
        self.run(move |inner| {
            let what = format!("reading {key}");
            let bytes = inner
                .entry(key.as_str(), &what)?
                .get_secret()
                .map_err(|e| map_error(e, &what))?;
            Ok(StoredSecret::new(SecretValue::new(bytes)))
        })
        .await
    }

    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        self.inner
            .capabilities
            .check_value(&value)
            .map_err(|e| e.with_backend(BACKEND))?;
        let key = key.clone();
        self.run(move |inner| inner.store(&key, &value)).await
    }

    async fn remove(&self, key: &KeyName) -> Result<()> {
        let key = key.clone();
        self.run(move |inner| inner.remove(&key)).await
    }

    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        let prefix = prefix.clone();
        self.run(move |inner| {
            let index = inner.read_index()?;
            index
                .names
                .iter()
                .filter(|n| n.starts_with(prefix.as_str()))
                .map(KeyName::new)
                .collect()
        })
        .await
    }

    async fn health(&self) -> Result<()> {
        self.run(|inner| {
            let what = "probing the keyring";
            match inner.entry(INDEX_ACCOUNT, what)?.get_secret() {
                Ok(_) | Err(keyring_core::Error::NoEntry) => Ok(()),
                Err(e) => Err(map_error(e, what)),
            }
        })
        .await
    }
}

impl fmt::Display for KeyringStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keyring({}:{})", self.inner.label, self.inner.service)
    }
}

impl fmt::Debug for KeyringStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringStore")
            .field("service", &self.inner.service)
            .field("backend", &self.inner.label)
            .field("lock_file", &self.inner.lock_file)
            .field("capabilities", &self.inner.capabilities)
            .finish()
    }
}
