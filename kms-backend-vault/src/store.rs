//! [`VaultStore`]: a [`KeyStore`] over a KV v2 or KV v1 mount.

use std::fmt;

use async_trait::async_trait;
use kms_core::{
    Capabilities, Error, ErrorKind, KeyName, KeyPrefix, KeyStore, Result, SecretMeta, SecretValue,
    StoredSecret,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::VaultClient;
use crate::encoding::{decode, encode};
use crate::error_map::{BACKEND, Failure, to_error};

/// The largest value stored: 512 KiB. Base64 (binary values) grows it to ~683 KiB of JSON,
/// far under Vault's default 32 MiB `max_request_size`, and keeps KV entries small enough for
/// Vault's storage backends (Consul's 512 KiB entry limit applies to text values).
pub const MAX_VALUE_LEN: usize = 512 * 1024;

/// The KV secrets-engine version of the mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KvVersion {
    /// KV v1: one value per key, no versions, no metadata.
    V1,
    /// KV v2 (the default): versions, metadata, check-and-set.
    #[default]
    V2,
}

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

/// Builds a [`VaultStore`].
#[derive(Debug)]
pub struct VaultStoreBuilder {
    client: VaultClient,
    mount: String,
    prefix: Option<String>,
    version: KvVersion,
    remove: RemoveMode,
}

impl VaultStoreBuilder {
    /// The KV mount (default `"secret"`).
    #[must_use]
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = mount.into().trim_matches('/').to_owned();
        self
    }

    /// The KV version of the mount (default [`KvVersion::V2`]).
    #[must_use]
    pub fn kv_version(mut self, version: KvVersion) -> Self {
        self.version = version;
        self
    }

    /// Keeps every key under `prefix/` inside the mount (names stay relative to it).
    /// The prefix must itself be a valid [`KeyName`].
    pub fn prefix(mut self, prefix: &str) -> Result<Self> {
        let valid = KeyName::new(prefix)?;
        self.prefix = Some(valid.as_str().to_owned());
        Ok(self)
    }

    /// What `remove` does on KV v2 (default [`RemoveMode::DestroyAll`]).
    #[must_use]
    pub fn remove_mode(mut self, mode: RemoveMode) -> Self {
        self.remove = mode;
        self
    }

    /// The store.
    pub fn build(self) -> VaultStore {
        VaultStore {
            client: self.client,
            mount: self.mount,
            prefix: self.prefix,
            version: self.version,
            remove: self.remove,
        }
    }
}

/// A [`KeyStore`] over a Vault/OpenBao KV mount.
///
/// - Names map to paths under the mount (and the optional prefix): `app/db` on KV v2 mount
///   `secret` is `secret/data/app/db`.
/// - Values map to a JSON map as the [crate docs](crate) describe (text as is, binary base64).
/// - KV v2: `get` reads the latest version (a soft-deleted or destroyed latest version is
///   `NotFound`), `get_version` a given one (ids are Vault's version numbers), `store` writes
///   a new version, [`store_cas`](Self::store_cas) with check-and-set.
/// - `list` walks the mount recursively (Vault lists one level) from the prefix's directory.
#[derive(Debug, Clone)]
pub struct VaultStore {
    client: VaultClient,
    mount: String,
    prefix: Option<String>,
    version: KvVersion,
    remove: RemoveMode,
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
        f.write_str(")")
    }
}

impl VaultStore {
    /// A builder over `client` for the KV v2 mount `secret`.
    pub fn builder(client: VaultClient) -> VaultStoreBuilder {
        VaultStoreBuilder {
            client,
            mount: "secret".into(),
            prefix: None,
            version: KvVersion::V2,
            remove: RemoveMode::DestroyAll,
        }
    }

    /// The client (shared with a [`VaultTransitProvider`](crate::VaultTransitProvider)).
    pub fn client(&self) -> &VaultClient {
        &self.client
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
        self.write(key, value, Some(expected)).await
    }

    async fn write(
        &self,
        key: &KeyName,
        value: SecretValue,
        cas: Option<u64>,
    ) -> Result<SecretMeta> {
        self.capabilities().check_value(&value)?;
        let path = self.data_path(key);
        let what = format!("store {path}");
        let data = encode(&value);
        drop(value);
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

    async fn read(&self, key: &KeyName, version: Option<&str>) -> Result<StoredSecret> {
        let path = self.data_path(key);
        let what = format!("get {path}");
        let query: Vec<(&str, &str)> = version.map(|v| ("version", v)).into_iter().collect();
        let answer = self
            .client
            .call(Method::GET, &path, &query, None, &what)
            .await
            .map_err(|e| not_found_as(e, key))?
            .ok_or_else(|| malformed(&what, "empty answer"))?;
        let data = answer
            .get("data")
            .ok_or_else(|| malformed(&what, "no data field"))?;
        match self.version {
            KvVersion::V1 => Ok(StoredSecret::new(decode(data, &what)?)),
            KvVersion::V2 => {
                let meta = data
                    .get("metadata")
                    .ok_or_else(|| malformed(&what, "no metadata field"))?;
                let inner = data.get("data").unwrap_or(&Value::Null);
                if inner.is_null() {
                    // A deleted or destroyed version: Vault answers 404 with metadata, some
                    // versions 200 with null data.
                    return Err(Error::not_found(key).with_backend(BACKEND));
                }
                Ok(StoredSecret::with_meta(
                    decode(inner, &what)?,
                    meta_of(meta, &what)?,
                ))
            }
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
        self.write(key, value, None).await
    }

    async fn remove(&self, key: &KeyName) -> Result<()> {
        let rel = self.rel(key.as_str());
        match self.version {
            KvVersion::V1 => {
                // KV v1 DELETE succeeds on a missing key; read first so a missing key is
                // NotFound (a concurrent delete in between is indistinguishable anyway).
                self.read(key, None).await?;
                let path = self.data_path(key);
                self.client
                    .call(Method::DELETE, &path, &[], None, &format!("remove {path}"))
                    .await?;
            }
            KvVersion::V2 => {
                let meta_path = self.metadata_path(&rel);
                let what = format!("remove {meta_path}");
                let meta = self
                    .client
                    .call(Method::GET, &meta_path, &[], None, &what)
                    .await
                    .map_err(|e| not_found_as(e, key))?
                    .ok_or_else(|| malformed(&what, "empty answer"))?;
                let data = meta
                    .get("data")
                    .ok_or_else(|| malformed(&what, "no data"))?;
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

    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
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

    async fn health(&self) -> Result<()> {
        self.client.health().await
    }
}
