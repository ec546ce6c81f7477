//! [`KeyringStore`]: the [`KeyStore`] over one service of an OS keyring.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use keyring_core::{CredentialStore, Entry};
use kms_core::{
    Capabilities, Error, ErrorKind, KeyName, KeyPrefix, KeyStore, Result, SecretMeta, SecretValue,
    StoredSecret,
};
use zeroize::Zeroizing;

use crate::BACKEND;
use crate::error_map::to_error;
use crate::index::{Accounts, Index, is_index_account};
use crate::lock::IndexLock;
use crate::offload::{Cancel, Offload};

/// A [`KeyStore`] over one service of an OS keyring.
///
/// A key name is the entry's user/account, the service name is the entry's service. Every
/// keyring call runs on a blocking thread (Tokio's blocking pool inside a runtime, a plain
/// thread outside one) and is bounded by the store's timeout. `list` reads the per-service
/// names index (see [`crate::index`] for its format and guarantees). `store` and `remove`
/// change the index first and the entry second, undoing the index change if the entry write
/// fails, so a call that returns an error leaves the key as it was. After every write the
/// entry is read back once; a keyring that accepts a write but does not keep it fails the
/// `store` with [`ErrorKind::Unavailable`]. No versions are kept.
#[derive(Clone)]
pub struct KeyringStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) service: String,
    pub(crate) label: &'static str,
    pub(crate) store: Arc<CredentialStore>,
    pub(crate) lock_file: PathBuf,
    pub(crate) capabilities: Capabilities,
    /// The largest index shard, in bytes.
    pub(crate) index_budget: usize,
    pub(crate) timeout: Duration,
    pub(crate) lock_timeout: Duration,
    pub(crate) offload: Offload,
}

impl KeyringStore {
    /// The store over an opened credential store: what the builder's `build` makes.
    pub(crate) fn new(inner: Inner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The service name entries live under.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// The index lock file this store uses.
    pub fn lock_file(&self) -> &std::path::Path {
        &self.inner.lock_file
    }

    /// Runs `f` on a blocking thread, waiting at most `deadline`.
    async fn run<T, F>(&self, what: String, deadline: Duration, f: F) -> Result<T>
    where
        F: FnOnce(&Inner, &Cancel) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let inner = self.inner.clone();
        self.inner
            .offload
            .run(&what, deadline, move |cancel| f(&inner, cancel))
            .await
    }

    /// The deadline of a write: the lock wait plus the keyring work.
    fn write_deadline(&self) -> Duration {
        self.inner.lock_timeout.saturating_add(self.inner.timeout)
    }
}

impl Inner {
    fn entry(&self, account: &str, what: &str) -> Result<Entry> {
        self.store
            .build(&self.service, account, None)
            .map_err(|e| to_error(e, what))
    }

    fn read_index(&self) -> Result<Index> {
        Index::read(self, self.index_budget)
    }

    /// Reads the index for a change, rebuilding it first if it is corrupt, or if it is missing
    /// altogether while the keyring holds keys of the service. A failed read has written
    /// nothing: its error is [marked](Error::not_applied) so.
    fn index_for_update(&self, cancel: &Cancel, what: &str) -> Result<Index> {
        let mut index = self.read_index().map_err(Error::not_applied)?;
        if index.corrupt().is_some() {
            cancel.check(what)?;
            index.repair(self, &self.service)?;
        } else if index.is_absent() {
            cancel.check(what)?;
            index.restore_if_absent(self, &self.service)?;
        }
        Ok(index)
    }

    fn store(&self, key: &KeyName, value: &SecretValue, cancel: &Cancel) -> Result<SecretMeta> {
        let what = format!("storing {key}");
        let _lock = IndexLock::acquire(&self.lock_file, self.lock_timeout, cancel)?;
        let mut index = self.index_for_update(cancel, &what)?;
        // Past this point the caller has not left: the writes run to the end (or are undone).
        cancel.check(&what)?;
        let undo = index
            .add(self, key.as_str())
            .map_err(|e| index_write_failed(e, &what, "nothing was written"))?;
        let written = self.write_value(key, value, &what);
        if let Err(e) = written {
            return Err(match undo {
                None => e,
                Some(undo) => match index.undo(self, undo) {
                    Ok(()) => e,
                    Err(undo_err) => outcome_unknown(
                        e,
                        &format!(
                            "{what}: the index now lists {key} without a value (undoing it failed: \
                         {undo_err}); remove({key}) cleans it up"
                        ),
                    ),
                },
            });
        }
        Ok(SecretMeta::default())
    }

    /// Writes the value and checks that the keyring kept it.
    fn write_value(&self, key: &KeyName, value: &SecretValue, what: &str) -> Result<()> {
        let entry = self.entry(key.as_str(), what)?;
        entry
            .set_secret(value.expose_secret())
            .map_err(|e| to_error(e, what))?;
        // The write went through: no error from here on may claim that nothing changed.
        let read_back = match entry.get_secret() {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(keyring_core::Error::NoEntry) => Zeroizing::new(Vec::new()),
            Err(e) => {
                return Err(outcome_unknown(
                    to_error(e, &format!("reading back {key}")),
                    &format!("{what}: the keyring accepted the value but reading it back failed"),
                ));
            }
        };
        if read_back.as_slice() != value.expose_secret() {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "{what}: the {} keyring accepted the write but did not keep the value",
                    self.label
                ),
            )
            .with_backend(BACKEND));
        }
        Ok(())
    }

    fn remove(&self, key: &KeyName, cancel: &Cancel) -> Result<()> {
        let what = format!("removing {key}");
        let _lock = IndexLock::acquire(&self.lock_file, self.lock_timeout, cancel)?;
        let mut index = self.index_for_update(cancel, &what)?;
        cancel.check(&what)?;
        let undo = index
            .remove(self, key.as_str())
            .map_err(|e| index_write_failed(e, &what, "nothing was removed"))?;
        let deleted = self.entry(key.as_str(), &what)?.delete_credential();
        match deleted {
            Ok(()) => {
                index.compact(self);
                Ok(())
            }
            // Removed by hand: the stale name is gone from the index, the key was already.
            Err(keyring_core::Error::NoEntry) => {
                let e = to_error(keyring_core::Error::NoEntry, &what);
                Err(match undo {
                    None => e,
                    Some(_) => {
                        index.compact(self);
                        annotate(
                            e,
                            &format!(
                                "{what}: the entry was already gone (removed outside this store); \
                                 its stale name was taken out of the index"
                            ),
                        )
                    }
                })
            }
            Err(e) => {
                let e = to_error(e, &what);
                Err(match undo.map(|u| index.undo(self, u)) {
                    None | Some(Ok(())) => e,
                    Some(Err(undo_err)) => outcome_unknown(
                        e,
                        &format!(
                            "{what}: {key} is kept but no longer listed (putting its name back \
                         failed: {undo_err}); the next store or remove of {key} fixes it"
                        ),
                    ),
                })
            }
        }
    }

    fn health(&self) -> Result<()> {
        #[cfg(all(
            feature = "secret-service",
            any(target_os = "linux", target_os = "freebsd", target_os = "openbsd")
        ))]
        if let Some(ss) = self
            .store
            .as_any()
            .downcast_ref::<crate::secret_service_store::SecretServiceStore>()
        {
            ss.health()
                .map_err(|e| to_error(e, "checking the Secret Service"))?;
        }
        let index = self.read_index()?;
        if let Some(e) = index.corrupt() {
            return Err(e.clone());
        }
        Ok(())
    }
}

impl Accounts for Inner {
    fn read(&self, account: &str) -> Result<Option<Vec<u8>>> {
        let what = "reading the keyring index";
        match self.entry(account, what)?.get_secret() {
            Ok(bytes) => Ok(Some(bytes)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(to_error(e, what)),
        }
    }

    fn write(&self, account: &str, bytes: &[u8]) -> Result<()> {
        let what = "writing the keyring index";
        self.entry(account, what)?
            .set_secret(bytes)
            .map_err(|e| to_error(e, what))
    }

    /// Deletes `account`: every entry of it when several claim it.
    fn delete(&self, account: &str) -> Result<()> {
        let what = "writing the keyring index";
        match self.entry(account, what)?.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(keyring_core::Error::Ambiguous(entries)) => {
                #[cfg(all(
                    feature = "secret-service",
                    any(target_os = "linux", target_os = "freebsd", target_os = "openbsd")
                ))]
                if let Some(ss) = self
                    .store
                    .as_any()
                    .downcast_ref::<crate::secret_service_store::SecretServiceStore>()
                {
                    return ss
                        .delete_all(&self.service, account)
                        .map(drop)
                        .map_err(|e| to_error(e, what));
                }
                for entry in entries {
                    match entry.delete_credential() {
                        Ok(()) | Err(keyring_core::Error::NoEntry) => {}
                        Err(e) => return Err(to_error(e, what)),
                    }
                }
                Ok(())
            }
            Err(e) => Err(to_error(e, what)),
        }
    }

    fn find_names(&self) -> Result<Option<BTreeSet<String>>> {
        let what = "searching the keyring for the service's keys";
        let spec = HashMap::from([("service", self.service.as_str())]);
        let found = match self.store.search(&spec) {
            Ok(found) => found,
            Err(keyring_core::Error::NotSupportedByStore(_)) => return Ok(None),
            Err(e) => return Err(to_error(e, what)),
        };
        Ok(Some(
            found
                .into_iter()
                .filter_map(|entry| {
                    let (service, user) = entry.get_specifiers()?;
                    let exists =
                        !matches!(entry.get_credential(), Err(keyring_core::Error::NoEntry));
                    (service == self.service
                        && exists
                        && !is_index_account(&user)
                        && KeyName::new(&user).is_ok())
                    .then_some(user)
                })
                .collect(),
        ))
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
        let what = format!("reading {key}");
        self.run(what.clone(), self.inner.timeout, move |inner, _| {
            let bytes = inner
                .entry(key.as_str(), &what)?
                .get_secret()
                .map_err(|e| to_error(e, &what))?;
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
        self.run(
            format!("storing {key}"),
            self.write_deadline(),
            move |inner, cancel| inner.store(&key, &value, cancel),
        )
        .await
    }

    async fn remove(&self, key: &KeyName) -> Result<()> {
        let key = key.clone();
        self.run(
            format!("removing {key}"),
            self.write_deadline(),
            move |inner, cancel| inner.remove(&key, cancel),
        )
        .await
    }

    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        let prefix = prefix.clone();
        self.run(
            "listing keys".into(),
            self.inner.timeout,
            move |inner, _| {
                inner
                    .read_index()?
                    .names()?
                    .iter()
                    .filter(|n| n.starts_with(prefix.as_str()))
                    .map(KeyName::new)
                    .collect()
            },
        )
        .await
    }

    /// Checks that the keyring answers and the index is readable: the Secret Service must have
    /// an unlocked default collection; a corrupt index is [`ErrorKind::InvalidData`].
    async fn health(&self) -> Result<()> {
        self.run(
            "checking the keyring".into(),
            self.inner.timeout,
            |inner, _| inner.health(),
        )
        .await
    }
}

/// The error of the index write that comes first in a `store` or `remove`: `{what},
/// {nothing}` ("nothing was written"), unless the write timed out and may still land.
fn index_write_failed(e: Error, what: &str, nothing: &str) -> Error {
    if e.kind() == ErrorKind::Timeout {
        let note = format!(
            "{what}: the index write did not answer in time and may still land; the entry was \
             not touched"
        );
        annotate(e, &note)
    } else {
        annotate(e, &format!("{what}, {nothing}"))
    }
}

/// `e` with `note` in front of its message, still [marked](Error::not_applied) if it was.
fn annotate(e: Error, note: &str) -> Error {
    let annotated = Error::new(e.kind(), format!("{note}: {}", e.message())).with_backend(BACKEND);
    if e.proves_not_applied() {
        annotated.not_applied()
    } else {
        annotated
    }
}

/// `e` with `note` in front of its message, for a failure after something was written: it
/// proves nothing about what changed, so it is neither marked nor of a kind that says
/// "refused" (those become [`ErrorKind::Unavailable`]).
fn outcome_unknown(e: Error, note: &str) -> Error {
    let kind = if Error::new(e.kind(), "").proves_not_applied() {
        ErrorKind::Unavailable
    } else {
        e.kind()
    };
    Error::new(kind, format!("{note}: {}", e.message())).with_backend(BACKEND)
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
            .field("timeout", &self.inner.timeout)
            .field("lock_timeout", &self.inner.lock_timeout)
            .field("capabilities", &self.inner.capabilities)
            .finish()
    }
}
