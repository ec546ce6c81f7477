//! The [`KeyStore`] trait, its capabilities and its conveniences.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{Error, ErrorKind, Result};
use crate::key_name::{KeyName, KeyPrefix};
use crate::secret::{SecretMeta, SecretValue, StoredSecret};

/// The default largest value a store accepts: 64 KiB, the AWS Secrets Manager limit, and far
/// above what any key or credential needs.
pub const DEFAULT_MAX_VALUE_LEN: usize = 64 * 1024;

/// An async store of secret keys.
///
/// Dyn-compatible: services hold an `Arc<dyn KeyStore>`. Backends (`MemoryStore`, Vault, AWS,
/// the OS keyring) implement it, and so does every decorator (cache, metrics, retry …), so a
/// stack of them is one `KeyStore` too. `Display` names the store, or the stack
/// (`"Retry(Timeout(Memory))"`).
///
/// # Contract (checked by the conformance suite)
///
/// - Names are validated [`KeyName`]s; an invalid name cannot be expressed.
/// - `store` rejects an empty value, and a value longer than [`Capabilities::max_value_len`],
///   with [`ErrorKind::InvalidInput`] before any I/O (see [`check_value_len`]).
/// - `get` and `remove` of a missing key fail with [`ErrorKind::NotFound`].
/// - `list` returns every name starting with the prefix (plain string prefix), in no
///   particular order, or [`ErrorKind::Unsupported`] if `capabilities().list` is false.
#[async_trait]
pub trait KeyStore: fmt::Display + fmt::Debug + Send + Sync + 'static {
    /// A short static label for metrics and logs: `"memory"`, `"vault"`, `"aws"`, `"keyring"`.
    /// Decorators return their inner store's label.
    fn backend(&self) -> &'static str;

    /// What this store can do.
    fn capabilities(&self) -> Capabilities;

    /// Reads the current version of `key`.
    async fn get(&self, key: &KeyName) -> Result<StoredSecret>;

    /// Answers a `get` of `key` at once, without waiting, if this store can: a cache hit.
    ///
    /// `None` means "call [`get`](Self::get)"; it is not an answer about the key. The default
    /// returns `None`; the cache overrides it, and a decorator directly above a cache (the
    /// metrics layer) tries it first, so a hit through the pair costs one boxed future, not
    /// two. `Some` is exactly what `get` would have returned, counted as the same read.
    fn get_now(&self, key: &KeyName) -> Option<Result<StoredSecret>> {
        let _ = key;
        None
    }

    /// Reads a given version of `key` (ids as returned in [`SecretMeta::version`]).
    ///
    /// The default returns [`ErrorKind::Unsupported`]; stores with
    /// [`Capabilities::versions`] override it.
    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        let _ = (key, version);
        Err(Error::unsupported("reading a given version").with_backend(self.backend()))
    }

    /// Writes `value` as the new current version of `key`, creating the key if needed, and
    /// returns what the backend knows about the written version.
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta>;

    /// Check-and-set: writes `value` as the new current version of `key` only if the key's
    /// current version is `expected` (a version id as returned in [`SecretMeta::version`]);
    /// `None` writes only if the key does not exist. The check and the write are one atomic
    /// step on the backend (Vault KV v2's `options.cas`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Conflict`] when the current version is not `expected` (nothing written);
    /// [`ErrorKind::Unsupported`] from stores that cannot check and write atomically (the
    /// default); otherwise what [`store`](Self::store) returns. Decorators forward it.
    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> Result<SecretMeta> {
        let _ = (key, value, expected);
        Err(
            Error::unsupported("check-and-set writes (store_if_version)")
                .with_backend(self.backend()),
        )
    }

    /// Removes `key` (what happens to old versions is the backend's documented choice).
    async fn remove(&self, key: &KeyName) -> Result<()>;

    /// Lists the names that start with `prefix`.
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>>;

    /// A cheap liveness probe of the backend: `Ok` if it can serve requests.
    async fn health(&self) -> Result<()>;
}

/// What a store can do, so generic code and tests can adapt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// `list` is supported.
    pub list: bool,
    /// Previous versions are kept and readable with `get_version`.
    pub versions: bool,
    /// The largest value `store` accepts, in bytes.
    pub max_value_len: usize,
    /// How the version before the current one is found, for overlap reads
    /// ([`Overlap`](crate::rotation::Overlap)).
    pub previous_version: PreviousVersion,
}

/// How a store with versions names the version before the current one, so
/// [`Overlap::read`](crate::rotation::Overlap::read) can read "current and previous" with the
/// store's own [`get`](KeyStore::get) and [`get_version`](KeyStore::get_version), through any
/// decorator, without a trait method of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PreviousVersion {
    /// The store keeps no readable previous version (the default; the keyring, Vault KV v1).
    #[default]
    None,
    /// Version ids are increasing integers (`"1"`, `"2"` …): the previous version is the
    /// highest lower id that `get_version` still reads (a deleted or destroyed version
    /// answers [`ErrorKind::NotFound`] and is skipped). The memory store, Vault KV v2.
    Sequential,
    /// `get_version` accepts this label for the version before the current one: AWS Secrets
    /// Manager's `AWSPREVIOUS` staging label.
    Label(&'static str),
}

impl Capabilities {
    /// Lists, keeps no versions, [`DEFAULT_MAX_VALUE_LEN`].
    pub const fn new() -> Self {
        Self {
            list: true,
            versions: false,
            max_value_len: DEFAULT_MAX_VALUE_LEN,
            previous_version: PreviousVersion::None,
        }
    }

    /// Sets whether `list` is supported.
    #[must_use]
    pub const fn with_list(mut self, list: bool) -> Self {
        self.list = list;
        self
    }

    /// Sets whether versions are kept.
    #[must_use]
    pub const fn with_versions(mut self, versions: bool) -> Self {
        self.versions = versions;
        self
    }

    /// Sets the largest accepted value.
    #[must_use]
    pub const fn with_max_value_len(mut self, max: usize) -> Self {
        self.max_value_len = max;
        self
    }

    /// Sets how the version before the current one is found (see [`PreviousVersion`]).
    #[must_use]
    pub const fn with_previous_version(mut self, previous: PreviousVersion) -> Self {
        self.previous_version = previous;
        self
    }

    /// Rejects `value` if it is empty or longer than [`max_value_len`](Self::max_value_len),
    /// with an [`ErrorKind::InvalidInput`] error that gives the sizes (never the bytes); see
    /// [`check_value_len`].
    pub fn check_value(&self, value: &SecretValue) -> Result<()> {
        check_value_len(value, self.max_value_len)
    }
}

impl Default for Capabilities {
    fn default() -> Self {
        Self::new()
    }
}

/// Rejects an empty value, or one longer than `max` bytes, with [`ErrorKind::InvalidInput`].
///
/// # The empty value
///
/// Every store rejects the empty value before any I/O, with one rule for all backends: the
/// kernel keyring cannot hold an empty `user` key (`add_key(2)`: EINVAL), and AWS Secrets
/// Manager refuses an empty `SecretString`/`SecretBinary` (minimum length 1), while memory,
/// Vault and the Secret Service would round-trip it. A store that accepted it on some backends
/// and failed on others, after I/O, would make the backend a hidden part of the contract.
pub fn check_value_len(value: &SecretValue, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "value is empty; stores accept 1 byte or more",
        ));
    }
    if value.len() > max {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("value is {} bytes, the maximum is {max}", value.len()),
        ));
    }
    Ok(())
}

/// The operations of a [`KeyStore`], for metric labels, timeouts and fault injection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Operation {
    /// `get` and `get_version`.
    Get,
    /// `store`.
    Store,
    /// `remove`.
    Remove,
    /// `list`.
    List,
    /// `health`.
    Health,
}

impl Operation {
    /// A stable label: `"get"`, `"store"`, `"remove"`, `"list"`, `"health"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Store => "store",
            Self::Remove => "remove",
            Self::List => "list",
            Self::Health => "health",
        }
    }

    /// Every operation.
    pub const ALL: [Operation; 5] = [
        Self::Get,
        Self::Store,
        Self::Remove,
        Self::List,
        Self::Health,
    ];
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The boxed future every `KeyStore` method returns (what `async_trait` desugars to).
type BoxFut<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 'a>>;

// `Arc<S>` and `Box<S>` (and so `Arc<dyn KeyStore>`) forward each call by handing back the
// inner store's boxed future itself: written with `async fn`, the forwarder would box a
// second future around the first on every call (~17 ns and one allocation on a cache hit).
macro_rules! forward_key_store {
    ($($ptr:ident),*) => {$(
        #[deny(clippy::missing_trait_methods)]
        impl<T: KeyStore + ?Sized> KeyStore for $ptr<T> {
            fn backend(&self) -> &'static str {
                (**self).backend()
            }
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }
            fn get<'s, 'k, 'f>(&'s self, key: &'k KeyName) -> BoxFut<'f, StoredSecret>
            where
                's: 'f,
                'k: 'f,
                Self: 'f,
            {
                (**self).get(key)
            }
            fn get_now(&self, key: &KeyName) -> Option<Result<StoredSecret>> {
                (**self).get_now(key)
            }
            fn get_version<'s, 'k, 'v, 'f>(
                &'s self,
                key: &'k KeyName,
                version: &'v str,
            ) -> BoxFut<'f, StoredSecret>
            where
                's: 'f,
                'k: 'f,
                'v: 'f,
                Self: 'f,
            {
                (**self).get_version(key, version)
            }
            fn store<'s, 'k, 'f>(
                &'s self,
                key: &'k KeyName,
                value: SecretValue,
            ) -> BoxFut<'f, SecretMeta>
            where
                's: 'f,
                'k: 'f,
                Self: 'f,
            {
                (**self).store(key, value)
            }
            fn store_if_version<'s, 'k, 'e, 'f>(
                &'s self,
                key: &'k KeyName,
                value: SecretValue,
                expected: Option<&'e str>,
            ) -> BoxFut<'f, SecretMeta>
            where
                's: 'f,
                'k: 'f,
                'e: 'f,
                Self: 'f,
            {
                (**self).store_if_version(key, value, expected)
            }
            fn remove<'s, 'k, 'f>(&'s self, key: &'k KeyName) -> BoxFut<'f, ()>
            where
                's: 'f,
                'k: 'f,
                Self: 'f,
            {
                (**self).remove(key)
            }
            fn list<'s, 'p, 'f>(&'s self, prefix: &'p KeyPrefix) -> BoxFut<'f, Vec<KeyName>>
            where
                's: 'f,
                'p: 'f,
                Self: 'f,
            {
                (**self).list(prefix)
            }
            fn health<'s, 'f>(&'s self) -> BoxFut<'f, ()>
            where
                's: 'f,
                Self: 'f,
            {
                (**self).health()
            }
        }
    )*};
}

forward_key_store!(Arc, Box);

/// Conveniences over any [`KeyStore`]: string names, text values. Blanket-implemented.
///
/// The string forms validate the name first, so an invalid name fails with
/// [`ErrorKind::InvalidInput`] and the store is never called.
#[async_trait]
pub trait KeyStoreExt: KeyStore {
    /// Validates `name`, then [`get`](KeyStore::get)s its current value (metadata dropped).
    async fn get_value(&self, name: &str) -> Result<SecretValue> {
        let key = KeyName::new(name)?;
        Ok(self.get(&key).await?.value)
    }

    /// Validates `name`, then stores `value` under it.
    async fn put(&self, name: &str, value: impl Into<SecretValue> + Send) -> Result<SecretMeta> {
        let key = KeyName::new(name)?;
        self.store(&key, value.into()).await
    }

    /// Validates `name`, then removes it.
    async fn delete(&self, name: &str) -> Result<()> {
        let key = KeyName::new(name)?;
        self.remove(&key).await
    }

    /// Validates `prefix`, then lists the names under it, sorted.
    async fn list_sorted(&self, prefix: &str) -> Result<Vec<KeyName>> {
        let prefix = KeyPrefix::new(prefix)?;
        let mut names = self.list(&prefix).await?;
        names.sort();
        Ok(names)
    }

    /// Validates `name`, reads its current value as a JSON object and returns one top-level
    /// `field` of it: a string field's text, any other JSON value's JSON text (`5432`,
    /// `true`, `{"a":1}`). The result is a zeroizing [`SecretValue`]; the other fields' values
    /// are never copied. This reads secrets in the shape other tools write them: `bao kv put
    /// secret/app/db username=app password=…`, or an AWS `SecretString` of
    /// `{"username":…,"password":…}`.
    ///
    /// # Errors
    ///
    /// What `get` returns, and [`ErrorKind::InvalidData`] when the value is not a JSON object
    /// or has no such field (the message names the key and the field, never a value).
    async fn get_field(&self, name: &str, field: &str) -> Result<SecretValue> {
        let key = KeyName::new(name)?;
        let secret = self.get(&key).await?;
        crate::json_field::json_field(&secret.value, field)
            .map_err(|e| Error::new(e.kind(), format!("secret '{key}': {}", e.message())))
    }

    /// `get`, mapping not-found to `None`.
    async fn get_opt(&self, key: &KeyName) -> Result<Option<StoredSecret>> {
        match self.get(key).await {
            Ok(secret) => Ok(Some(secret)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl<T: KeyStore + ?Sized> KeyStoreExt for T {}
