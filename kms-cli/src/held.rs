//! The keys a store holds: one definition for every command that compares or copies
//! stores (`diff`, `migrate`, `import`, `export`, `ls --long`).
//!
//! A store holds a key when its `list` names it (under the prefix) **and** a `get` of it
//! answers with a value. A listed key whose `get` answers `NotFound` is not held: Vault KV
//! v2 keeps listing a key whose latest version is soft-deleted (its metadata remains) while
//! reading it answers `NotFound`, and any store can lose a key between the listing and the
//! read. So a key soft-deleted in the source is neither copied by `migrate` nor reported by
//! `diff` as "only in A": after a complete migrate the two stores compare equal.

use kms_core::{Error, KeyName, KeyStore, KeyStoreExt, StoredSecret};

/// Reads `key` from `store`: `Some` if the store holds it, `None` if not (see the module
/// docs), an error for any other failure.
///
/// # Errors
///
/// What `get` returns, except `NotFound`.
pub async fn read_held(store: &dyn KeyStore, key: &KeyName) -> Result<Option<StoredSecret>, Error> {
    store.get_opt(key).await
}

/// A store for tests that lists keys it does not hold, as Vault KV v2 lists a soft-deleted
/// key: `list` names the inner store's keys and the `deleted` ones, `get` of those answers
/// `NotFound`.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct ListsDeleted {
    pub(crate) inner: kms_core::MemoryStore,
    pub(crate) deleted: Vec<KeyName>,
}

#[cfg(test)]
impl std::fmt::Display for ListsDeleted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ListsDeleted({})", self.inner)
    }
}

#[cfg(test)]
impl ListsDeleted {
    /// `inner`, also listing `deleted`.
    pub(crate) fn new(inner: kms_core::MemoryStore, deleted: &[&str]) -> Self {
        Self {
            inner,
            deleted: deleted.iter().map(|k| KeyName::new(k).unwrap()).collect(),
        }
    }
}

#[cfg(test)]
#[async_trait::async_trait]
impl KeyStore for ListsDeleted {
    fn backend(&self) -> &'static str {
        "memory"
    }
    fn capabilities(&self) -> kms_core::Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &KeyName) -> kms_core::Result<StoredSecret> {
        if self.deleted.contains(key) {
            return Err(Error::not_found(key));
        }
        self.inner.get(key).await
    }
    async fn store(
        &self,
        key: &KeyName,
        value: kms_core::SecretValue,
    ) -> kms_core::Result<kms_core::SecretMeta> {
        self.inner.store(key, value).await
    }
    async fn remove(&self, key: &KeyName) -> kms_core::Result<()> {
        self.inner.remove(key).await
    }
    async fn list(&self, prefix: &kms_core::KeyPrefix) -> kms_core::Result<Vec<KeyName>> {
        let mut names = self.inner.list(prefix).await?;
        names.extend(
            self.deleted
                .iter()
                .filter(|k| k.as_str().starts_with(prefix.as_str()))
                .cloned(),
        );
        Ok(names)
    }
    async fn health(&self) -> kms_core::Result<()> {
        Ok(())
    }
}
