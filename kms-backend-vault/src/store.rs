//! [`VaultStore`]: a [`KeyStore`] over a KV v2 or KV v1 mount.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use kms_core::CallContext;
use kms_core::{
    Capabilities, Error, ErrorKind, KeyName, KeyPrefix, KeyStore, PreviousVersion, Result,
    SecretMeta, SecretValue, StoredSecret, WriteOrder,
};
use reqwest::Method;
use serde_json::{Map, Value, json};
use tokio::sync::OnceCell;

use crate::BACKEND;
use crate::client::VaultClient;
use crate::encoding::{decode, encode, with_field};
use crate::engine::{Engine, KvVersion};
use crate::error_map::{Failure, to_error};
use crate::mount::check_mount;

/// The largest value stored: 512 KiB. Base64 (binary values) grows it to ~683 KiB of JSON,
/// far under Vault's default 32 MiB `max_request_size`, and keeps KV entries small enough for
/// Vault's storage backends (Consul's 512 KiB entry limit applies to text values).
pub const MAX_VALUE_LEN: usize = 512 * 1024;

/// What [`KeyStore::remove`] does on KV v2 (KV v1 always deletes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RemoveMode {
    /// Delete the metadata and every version, permanently (`DELETE <mount>/metadata/<key>`).
    /// The default: afterwards the key is gone from `get`, `list` and `remove`.
    #[default]
    DestroyAll,
    /// Soft-delete the latest version (`DELETE <mount>/data/<key>`); it can be undeleted with
    /// Vault's tools and older versions stay readable with `get_version`. `get` then answers
    /// `NotFound`, a second `remove` answers `NotFound`, but `list` still shows the key (its
    /// metadata remains) until it is destroyed.
    SoftDelete,
}

/// A [`KeyStore`] over a Vault/OpenBao KV mount.
///
/// - Names map to paths under the mount (and the optional prefix): `app/db` on KV v2 mount
///   `secret` is `secret/data/app/db`.
/// - Values map to a JSON map as the [crate docs](crate) describe (text as is, binary base64;
///   secrets written by other tools read as their whole JSON object, or one field with
///   [`VaultStoreBuilder::field`](crate::VaultStoreBuilder::field)).
/// - Before its first operation the store checks its mount once (`sys/internal/ui/mounts`):
///   a missing mount, another engine, or the other KV version is
///   [`ErrorKind::Configuration`] on every operation, before anything is written.
///   `health` checks it every time.
/// - KV v2: `get` reads the latest version (a soft-deleted or destroyed latest version is
///   `NotFound`), `get_version` a given one (ids are Vault's version numbers), `store` writes
///   a new version, [`store_cas`](Self::store_cas) with check-and-set.
/// - `list` walks the mount recursively (Vault lists one level) from the prefix's directory.
#[derive(Debug, Clone)]
pub struct VaultStore {
    client: VaultClient,
    mount: Arc<str>,
    prefix: Option<Arc<str>>,
    version: KvVersion,
    remove: RemoveMode,
    field: Option<Arc<str>>,
    /// Set once the mount was found to be what the store expects (shared by clones).
    mount_checked: Arc<OnceCell<()>>,
    /// Writes to one key run to completion in order, even when their callers drop them
    /// (shared by clones).
    writes: Arc<WriteOrder>,
}

impl fmt::Display for VaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = match self.version {
            KvVersion::V1 => "kv1",
            KvVersion::V2 => "kv2",
        };
        write!(f, "Vault({v}:{}", self.mount)?;
        if let Some(p) = &self.prefix {
            write!(f, "/{p}")?;
        }
        if let Some(field) = &self.field {
            write!(f, "#{field}")?;
        }
        // Two stores that differ only in their namespace read different secrets: name it.
        if let Some(namespace) = self.client.namespace() {
            write!(f, ", namespace={namespace}")?;
        }
        f.write_str(")")
    }
}

/// A secret's data object and (KV v2) its version, as read before a field update.
struct Current {
    data: Map<String, Value>,
    version: Option<u64>,
}

impl VaultStore {
    /// The store over checked settings (what
    /// [`VaultStoreBuilder::build`](crate::VaultStoreBuilder::build) makes). No I/O.
    pub(crate) fn new(
        client: VaultClient,
        mount: String,
        prefix: Option<String>,
        version: KvVersion,
        remove: RemoveMode,
        field: Option<String>,
    ) -> Self {
        Self {
            client,
            mount: mount.into(),
            prefix: prefix.map(Into::into),
            version,
            remove,
            field: field.map(Into::into),
            mount_checked: Arc::new(OnceCell::new()),
            writes: Arc::new(WriteOrder::new()),
        }
    }

    /// The client (shared with a [`VaultTransitProvider`](crate::VaultTransitProvider)).
    pub fn client(&self) -> &VaultClient {
        &self.client
    }

    /// Checks the mount once (concurrent first calls share one check; a failed check is
    /// tried again by the next call).
    async fn ensure_mount(&self) -> Result<()> {
        if self.mount_checked.initialized() {
            return Ok(());
        }
        self.mount_checked
            .get_or_try_init(|| check_mount(&self.client, &self.mount, Engine::Kv(self.version)))
            .await
            .map(drop)
    }

    /// The key's path relative to the mount (with the prefix).
    fn rel(&self, key: &str) -> String {
        match &self.prefix {
            Some(p) if key.is_empty() => format!("{p}/"),
            Some(p) => format!("{p}/{key}"),
            None => key.to_owned(),
        }
    }

    fn data_path(&self, key: &KeyName) -> String {
        match self.version {
            KvVersion::V2 => format!("{}/data/{}", self.mount, self.rel(key.as_str())),
            KvVersion::V1 => format!("{}/{}", self.mount, self.rel(key.as_str())),
        }
    }

    fn metadata_path(&self, rel: &str) -> String {
        match self.version {
            KvVersion::V2 => format!("{}/metadata/{rel}", self.mount),
            KvVersion::V1 => format!("{}/{rel}", self.mount),
        }
    }

    /// Writes `value` as a new version only if the current version is `expected`
    /// (`0`: only if the key does not exist). A mismatch is [`ErrorKind::Conflict`].
    /// KV v2 only; on KV v1 it is [`ErrorKind::Unsupported`].
    pub async fn store_cas(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: u64,
    ) -> Result<SecretMeta> {
        if self.version == KvVersion::V1 {
            return Err(Error::unsupported("check-and-set on KV v1").with_backend(BACKEND));
        }
        self.ordered(key, move |this, key| async move {
            this.write(&key, value, Some(expected)).await
        })
        .await
    }

    /// Runs a write of `key` through the store's [`WriteOrder`] (after the key's earlier
    /// writes, to completion even if the caller drops it), carrying the caller's
    /// [`CallContext`] onto the write's task.
    async fn ordered<T, F, Fut>(&self, key: &KeyName, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(VaultStore, KeyName) -> Fut,
        Fut: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        let context = CallContext::current();
        let write = write(self.clone(), key.clone());
        match context {
            Some(context) => self.writes.run(key, context.scope(write)).await,
            None => self.writes.run(key, write).await,
        }
    }

    async fn write(
        &self,
        key: &KeyName,
        value: SecretValue,
        cas: Option<u64>,
    ) -> Result<SecretMeta> {
        self.capabilities().check_value(&value)?;
        if let Some(field) = &self.field {
            // Fields hold text: refuse before any I/O.
            with_field(None, field, &value)?;
        }
        // Every failure until the write request goes out proves nothing was written.
        self.ensure_mount().await.map_err(unsent)?;
        let (data, cas) = match &self.field {
            None => (encode(&value), cas),
            Some(field) => {
                let current = self.read_current(key).await.map_err(unsent)?;
                // Creating the secret is a check-and-set too (against the metadata's current
                // version: 0, or a deleted latest version), so another client creating it in
                // between is a Conflict, not a lost field.
                let version = match (&current, self.version) {
                    (Some(c), _) => c.version,
                    (None, KvVersion::V2) => {
                        Some(self.metadata_version(key).await.map_err(unsent)?)
                    }
                    (None, KvVersion::V1) => None,
                };
                let data = with_field(current.map(|c| c.data), field, &value)?;
                (data, cas.or(version))
            }
        };
        drop(value);
        let repeat = match self.version {
            KvVersion::V2 => CallContext::current().filter(CallContext::is_repeat),
            KvVersion::V1 => None,
        };
        match repeat {
            Some(write) => self.put_repeat(key, data, cas, write.started()).await,
            None => self.put(key, data, cas).await,
        }
    }

    /// A repeated attempt of one logical write (KV v2): an earlier attempt may have landed,
    /// even after it timed out. Vault keeps no request id per version, so the repeat is
    /// recognised by content and time: if the current version holds exactly `data` and was
    /// created after the logical write began (less [`CLOCK_SKEW`]), it is the earlier
    /// attempt's version and is returned without writing. Otherwise the write is sent as a
    /// check-and-set against the version just read (or the caller's own `cas`), so an earlier
    /// attempt that lands in between makes it fail instead of adding a second version; that
    /// failure is checked the same way once more.
    async fn put_repeat(
        &self,
        key: &KeyName,
        data: Value,
        cas: Option<u64>,
        started: SystemTime,
    ) -> Result<SecretMeta> {
        let what = format!("store {}", self.data_path(key));
        // This attempt writes nothing before `put`: a failure until then proves it.
        let seen = self.read_current_raw(key).await.map_err(unsent)?;
        if let Some(meta) = landed(seen.as_ref(), &data, started, &what).map_err(unsent)? {
            return Ok(meta);
        }
        let guard = cas.unwrap_or_else(|| seen.as_ref().map_or(0, |(_, _, v)| *v));
        match self.put(key, data.clone(), Some(guard)).await {
            Err(e) if e.kind() == ErrorKind::Conflict => {
                // The check-and-set write was refused: until the next write, nothing is.
                let again = self.read_current_raw(key).await.map_err(unsent)?;
                if let Some(meta) = landed(again.as_ref(), &data, started, &what).map_err(unsent)? {
                    return Ok(meta);
                }
                if again.is_none() && cas.is_none() {
                    // The latest version is deleted (its metadata remains, so cas=0 cannot
                    // apply) and nothing of this write landed: write it.
                    return self.put(key, data, None).await;
                }
                Err(e)
            }
            other => other,
        }
    }

    /// The current version's data object, metadata and number; `None` if the key does not
    /// exist or its latest version is deleted.
    async fn read_current_raw(&self, key: &KeyName) -> Result<Option<(Value, Value, u64)>> {
        match self.read_raw(key, None).await {
            Ok((data, Some(meta))) => {
                let version = meta.get("version").and_then(Value::as_u64).unwrap_or(0);
                Ok(Some((data, meta, version)))
            }
            Ok((_, None)) => Ok(None),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends one write of the data object `data` (check-and-set `cas` on KV v2).
    async fn put(&self, key: &KeyName, data: Value, cas: Option<u64>) -> Result<SecretMeta> {
        let path = self.data_path(key);
        let what = format!("store {path}");
        let body = match (self.version, cas) {
            (KvVersion::V1, _) => data,
            (KvVersion::V2, None) => json!({ "data": data }),
            (KvVersion::V2, Some(cas)) => json!({ "data": data, "options": { "cas": cas } }),
        };
        let answer = self
            .client
            .call(Method::POST, &path, &[], Some(&body), &what)
            .await?;
        drop(body);
        match self.version {
            KvVersion::V1 => Ok(SecretMeta::default()),
            KvVersion::V2 => {
                let data = answer
                    .as_ref()
                    .and_then(|a| a.get("data"))
                    .ok_or_else(|| malformed(&what, "no data in the write answer"))?;
                meta_of(data, &what)
            }
        }
    }

    /// Reads `key` (`version` on KV v2): its data object and version metadata (`None` on KV
    /// v1). A missing key, or a deleted or destroyed version, is `NotFound`.
    async fn read_raw(
        &self,
        key: &KeyName,
        version: Option<&str>,
    ) -> Result<(Value, Option<Value>)> {
        let path = self.data_path(key);
        let what = format!("get {path}");
        let query: Vec<(&str, &str)> = version.map(|v| ("version", v)).into_iter().collect();
        let answer = self
            .client
            .call(Method::GET, &path, &query, None, &what)
            .await
            .map_err(|e| not_found_as(e, key))?
            .ok_or_else(|| malformed(&what, "empty answer"))?;
        let Value::Object(mut answer) = answer else {
            return Err(malformed(&what, "the answer is not a JSON object"));
        };
        let data = answer
            .remove("data")
            .ok_or_else(|| malformed(&what, "no data field"))?;
        match self.version {
            KvVersion::V1 => Ok((data, None)),
            KvVersion::V2 => {
                let Value::Object(mut data) = data else {
                    return Err(malformed(&what, "data is not a JSON object"));
                };
                let meta = data
                    .remove("metadata")
                    .ok_or_else(|| malformed(&what, "no metadata field"))?;
                let inner = data.remove("data").unwrap_or(Value::Null);
                if inner.is_null() {
                    // A deleted or destroyed version: Vault answers 404 with metadata, some
                    // versions 200 with null data.
                    return Err(Error::not_found(key).with_backend(BACKEND));
                }
                Ok((inner, Some(meta)))
            }
        }
    }

    async fn read(&self, key: &KeyName, version: Option<&str>) -> Result<StoredSecret> {
        self.ensure_mount().await?;
        let (data, meta) = self.read_raw(key, version).await?;
        let what = format!("get {}", self.data_path(key));
        let value = match &self.field {
            Some(field) => crate::encoding::field(&data, field, &what)?,
            None => decode(&data, &what)?,
        };
        match meta {
            None => Ok(StoredSecret::new(value)),
            Some(meta) => Ok(StoredSecret::with_meta(value, meta_of(&meta, &what)?)),
        }
    }

    /// The current data object and version, `None` if the key does not exist (or its latest
    /// version is deleted).
    async fn read_current(&self, key: &KeyName) -> Result<Option<Current>> {
        match self.read_raw(key, None).await {
            Ok((data, meta)) => {
                let what = format!("get {}", self.data_path(key));
                let version = meta
                    .as_ref()
                    .and_then(|m| m.get("version"))
                    .and_then(Value::as_u64);
                let data = crate::encoding::object(&data, &what)?.clone();
                Ok(Some(Current { data, version }))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// KV v2: the metadata's `current_version` (what check-and-set compares against), 0 if
    /// the key has no metadata.
    async fn metadata_version(&self, key: &KeyName) -> Result<u64> {
        let path = self.metadata_path(&self.rel(key.as_str()));
        let what = format!("get {path}");
        match self.client.call(Method::GET, &path, &[], None, &what).await {
            Ok(answer) => Ok(answer
                .as_ref()
                .and_then(|a| a.get("data"))
                .and_then(|d| d.get("current_version"))
                .and_then(Value::as_u64)
                .unwrap_or(0)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Lists one directory (relative to the mount), `[]` if it does not exist.
    async fn list_dir(&self, dir: &str) -> Result<Vec<String>> {
        let path = self.metadata_path(dir);
        let what = format!("list {path}");
        let answer = match self
            .client
            .call(Method::GET, &path, &[("list", "true")], None, &what)
            .await
        {
            Ok(a) => a,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let Some(answer) = answer else {
            return Ok(Vec::new());
        };
        answer
            .get("data")
            .and_then(|d| d.get("keys"))
            .and_then(Value::as_array)
            .ok_or_else(|| malformed(&what, "no data.keys in the list answer"))?
            .iter()
            .map(|k| {
                k.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| malformed(&what, "a listed key is not a string"))
            })
            .collect()
    }

    /// `remove` itself (run through the write order).
    async fn remove_now(&self, key: &KeyName) -> Result<()> {
        // Every failure until the delete or write request goes out proves nothing changed.
        self.ensure_mount().await.map_err(unsent)?;
        let Some(field) = &self.field else {
            return self.remove_secret(key).await;
        };
        let Some(mut current) = self.read_current(key).await.map_err(unsent)? else {
            return Err(Error::not_found(key).with_backend(BACKEND));
        };
        if current.data.remove(&**field).is_none() {
            return Err(Error::not_found(key).with_backend(BACKEND));
        }
        if current.data.is_empty() {
            return self.remove_secret(key).await;
        }
        self.put(key, Value::Object(current.data), current.version)
            .await
            .map(drop)
    }

    /// Removes the whole secret (as [`RemoveMode`] says on KV v2).
    async fn remove_secret(&self, key: &KeyName) -> Result<()> {
        let rel = self.rel(key.as_str());
        match self.version {
            KvVersion::V1 => {
                // KV v1 DELETE succeeds on a missing key; read first (any shape: a secret
                // written by another tool is removed too) so a missing key is NotFound.
                self.read_raw(key, None).await.map_err(unsent)?;
                let path = self.data_path(key);
                self.client
                    .call(Method::DELETE, &path, &[], None, &format!("remove {path}"))
                    .await?;
            }
            KvVersion::V2 => {
                let meta_path = self.metadata_path(&rel);
                let what = format!("remove {meta_path}");
                // Only a read so far: a failure here proves nothing was removed.
                let meta = self
                    .client
                    .call(Method::GET, &meta_path, &[], None, &what)
                    .await
                    .map_err(|e| not_found_as(e, key))
                    .and_then(|m| m.ok_or_else(|| malformed(&what, "empty answer")))
                    .map_err(unsent)?;
                let data = meta
                    .get("data")
                    .ok_or_else(|| unsent(malformed(&what, "no data")))?;
                let current = data
                    .get("current_version")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let live = data
                    .get("versions")
                    .and_then(|v| v.get(current.to_string()))
                    .is_some_and(|v| {
                        v.get("deletion_time")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .is_empty()
                            && !v.get("destroyed").and_then(Value::as_bool).unwrap_or(false)
                    });
                match self.remove {
                    RemoveMode::DestroyAll => {
                        self.client
                            .call(Method::DELETE, &meta_path, &[], None, &what)
                            .await?;
                    }
                    RemoveMode::SoftDelete => {
                        if !live {
                            return Err(Error::not_found(key).with_backend(BACKEND));
                        }
                        let path = self.data_path(key);
                        self.client
                            .call(Method::DELETE, &path, &[], None, &format!("remove {path}"))
                            .await?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// How far Vault's clock may run behind this client's when a repeated write decides whether
/// the current version is its own earlier attempt (see `put_repeat`).
pub(crate) const CLOCK_SKEW: Duration = Duration::from_secs(5);

/// The current version's metadata if it is this write's earlier attempt: the same data, created
/// after the write began (less [`CLOCK_SKEW`]).
fn landed(
    seen: Option<&(Value, Value, u64)>,
    data: &Value,
    started: SystemTime,
    what: &str,
) -> Result<Option<SecretMeta>> {
    let Some((current, meta, _)) = seen else {
        return Ok(None);
    };
    if current != data {
        return Ok(None);
    }
    let meta = meta_of(meta, what)?;
    let after_start = meta.created_at.is_some_and(|at| at + CLOCK_SKEW >= started);
    Ok(after_start.then_some(meta))
}

/// `e`, a failure before the write or delete request was sent, marked as proof that nothing
/// changed ([`Error::not_applied`]); except a `NotFound`, which says the key does not exist, so
/// a value a cache above still holds for it is not right either.
fn unsent(e: Error) -> Error {
    if e.is_not_found() { e } else { e.not_applied() }
}

fn malformed(what: &str, why: &str) -> Error {
    to_error(Failure::Malformed(why.to_owned()), what)
}

/// Replaces Vault's path-naming NotFound with the key's own.
fn not_found_as(e: Error, key: &KeyName) -> Error {
    if e.kind() == ErrorKind::NotFound {
        Error::not_found(key).with_backend(BACKEND)
    } else {
        e
    }
}

/// Version and created time from a KV v2 version metadata object.
fn meta_of(meta: &Value, what: &str) -> Result<SecretMeta> {
    let version = meta
        .get("version")
        .and_then(Value::as_u64)
        .ok_or_else(|| malformed(what, "no version in metadata"))?;
    let mut out = SecretMeta::with_version(version.to_string());
    if let Some(created) = meta.get("created_time").and_then(Value::as_str) {
        let at = humantime::parse_rfc3339_weak(created.trim_end_matches('Z'))
            .or_else(|_| humantime::parse_rfc3339(created))
            .map_err(|_| malformed(what, "bad created_time"))?;
        out = out.created_at(at);
    }
    Ok(out)
}

/// Every method but `get_now` is implemented here. `get_now` keeps the trait's default
/// (`None`, "call `get`"): the store holds no values in memory, so every read asks Vault.
#[async_trait]
impl KeyStore for VaultStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new()
            .with_list(true)
            .with_versions(self.version == KvVersion::V2)
            .with_max_value_len(MAX_VALUE_LEN)
            // KV v2 numbers versions 1, 2, 3 …; a deleted or destroyed one reads as NotFound.
            .with_previous_version(match self.version {
                KvVersion::V2 => PreviousVersion::Sequential,
                KvVersion::V1 => PreviousVersion::None,
            })
    }

    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        self.read(key, None).await
    }

    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        if self.version == KvVersion::V1 {
            return Err(Error::unsupported("versions on KV v1").with_backend(BACKEND));
        }
        match version.parse::<u64>() {
            Ok(n) if n > 0 => self.read(key, Some(version)).await,
            _ => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("version {version:?} of {key}: Vault versions are positive integers"),
            )
            .with_backend(BACKEND)),
        }
    }

    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        self.ordered(key, move |this, key| async move {
            this.write(&key, value, None).await
        })
        .await
    }

    /// KV v2's check-and-set (`options.cas`): `expected` is a version number, `None` means
    /// "only if the key does not exist" (`cas: 0`). KV v1 has none: Unsupported.
    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> Result<SecretMeta> {
        let expected = match expected {
            None => 0,
            Some(v) => v.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "Vault KV versions are positive integers, got '{}'",
                        v.escape_debug()
                    ),
                )
                .with_backend(BACKEND)
            })?,
        };
        self.store_cas(key, value, expected).await
    }

    async fn remove(&self, key: &KeyName) -> Result<()> {
        self.ordered(key, |this, key| async move { this.remove_now(&key).await })
            .await
    }

    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        self.ensure_mount().await?;
        let strip = self.prefix.as_ref().map_or(0, |p| p.len() + 1);
        let mut out = Vec::new();
        let mut dirs = vec![self.rel(prefix.directory())];
        while let Some(dir) = dirs.pop() {
            for entry in self.list_dir(&dir).await? {
                let full = format!("{dir}{entry}");
                let name = &full[strip.min(full.len())..];
                if entry.ends_with('/') {
                    // Descend only into directories that can still hold a match.
                    if name.starts_with(prefix.as_str()) || prefix.as_str().starts_with(name) {
                        dirs.push(full);
                    }
                } else if name.starts_with(prefix.as_str())
                    && let Ok(key) = KeyName::new(name)
                {
                    out.push(key);
                }
            }
        }
        Ok(out)
    }

    /// The server can serve (`sys/health`), the token is accepted and the mount is what the
    /// store expects (checked every time, not cached).
    async fn health(&self) -> Result<()> {
        self.client.health().await?;
        check_mount(&self.client, &self.mount, Engine::Kv(self.version)).await?;
        let _ = self.mount_checked.set(());
        Ok(())
    }
}
