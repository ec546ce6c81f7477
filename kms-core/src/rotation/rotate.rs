//! [`Rotation`]: replace a key's value with a fresh one, safely, on any store.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use super::document::{object_fields, replace_field};
use super::generator::Generator;
use super::observer::{RotationEvent, RotationObserver, RotationOutcome};
use crate::error::{Error, ErrorKind, Result};
use crate::key_name::KeyName;
use crate::secret::{SecretMeta, SecretValue};
use crate::store::KeyStore;

/// A rotation of one key: read the current version, make a new value, write it as the next
/// version only if the current version is still the one read.
///
/// ```
/// use kms_core::rotation::Rotation;
/// use kms_core::{ErrorKind, KeyName, KeyStore, KeyStoreExt, MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), kms_core::Error> {
/// let store = MemoryStore::new();
/// store.put("db/creds", r#"{"username":"app","password":"old"}"#).await?;
/// let key = KeyName::new("db/creds")?;
///
/// // A multi-field secret: rotate one field, keep the others.
/// let done = Rotation::new().field("password").run(&store, &key).await?;
/// assert_eq!(done.previous.version.as_deref(), Some("1"));
/// assert_eq!(done.current.version.as_deref(), Some("2"));
/// assert_eq!(store.get_field("db/creds", "username").await?.expose_str()?, "app");
/// assert_eq!(store.get_field("db/creds", "password").await?.len(), 43);
///
/// // Replacing the whole document must be asked for.
/// let err = Rotation::new().run(&store, &key).await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidInput);
/// # Ok(()) }
/// ```
///
/// # What it does
///
/// 1. [`get`](KeyStore::get) the key. A missing key is [`ErrorKind::NotFound`]: a rotation
///    replaces a value, it never creates one.
/// 2. Make the new value with the [`Generator`] (default: 32 bytes from the OS CSPRNG,
///    base64url without padding). With [`field`](Self::field), set that top-level field of
///    the JSON-object value to it and keep every other byte of the document; the field must
///    exist. Without a field, a value that is a JSON object is refused
///    ([`ErrorKind::InvalidInput`]) unless [`replace_document`](Self::replace_document) is
///    set: writing random bytes over `{"username":…,"password":…}` would lose the username
///    and break every reader of a field.
/// 3. Write it with [`store_if_version`](KeyStore::store_if_version) against the version
///    read (Vault KV v2's `options.cas`; on AWS `PutSecretValue` of a staged version, then
///    `UpdateSecretVersionStage` moving `AWSCURRENT` from the version read; the memory store
///    under its lock). Two concurrent rotations of one key give one new version and one
///    [`ErrorKind::Conflict`], never a lost update. A store whose values carry no version id,
///    or that answers `store_if_version` with [`ErrorKind::Unsupported`] (the OS keyring,
///    Vault KV v1), is written with a plain [`store`](KeyStore::store), and
///    [`Rotated::checked`] is `false`: there, a concurrent write between the read and the
///    write is not detected, and a key removed in between is written again.
/// 4. Tell the [`RotationObserver`], if one is set (metrics, audit).
///
/// Through a cache, step 1 may read a version the backend has already replaced; the write
/// is then refused with [`ErrorKind::Conflict`] and nothing is lost (read again, or rotate
/// again). A [`Retry`](crate::Retry) layer never retries the check-and-set write.
///
/// # Vault secrets with several fields
///
/// Vault's store returns a secret written by `bao kv put … username=u password=p` as the JSON
/// text of its data, and writes a text value back as `{"value": "<text>"}`. Rotating a field
/// of such a secret through a plain Vault store therefore keeps the fields for this library's
/// readers but changes the secret's shape for Vault's own tools. Open the store with the
/// field selected instead (`VaultStoreBuilder::field("password")`, or `?field=password` in a
/// URI) and rotate its whole value: the backend then updates that field in place, keeping the
/// other fields in Vault's shape, with the same check-and-set. `kms rotate --field` does so.
#[derive(Clone, Default)]
pub struct Rotation {
    generator: Generator,
    field: Option<Arc<str>>,
    replace_document: bool,
    observer: Option<Arc<dyn RotationObserver>>,
}

/// What a successful [`Rotation::run`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rotated {
    /// The key rotated.
    pub key: KeyName,
    /// The version replaced, as the read returned it.
    pub previous: SecretMeta,
    /// The version written, as the write returned it.
    pub current: SecretMeta,
    /// Whether the write was a check-and-set against [`previous`](Self::previous) (false on
    /// stores without one; see [`Rotation`]).
    pub checked: bool,
}

impl Rotation {
    /// A rotation with the default [`Generator`], of the whole value, without an observer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes new values with `generator`.
    #[must_use]
    pub fn generator(mut self, generator: Generator) -> Self {
        self.generator = generator;
        self
    }

    /// Rotates only this top-level field of a JSON-object value, keeping the others. The
    /// field must exist and the new value must be text (the default generator's is).
    #[must_use]
    pub fn field(mut self, name: impl Into<Arc<str>>) -> Self {
        self.field = Some(name.into());
        self
    }

    /// Allows replacing a value that is a JSON object as a whole (refused by default).
    #[must_use]
    pub fn replace_document(mut self, allow: bool) -> Self {
        self.replace_document = allow;
        self
    }

    /// Reports every outcome to `observer`.
    #[must_use]
    pub fn observer(mut self, observer: Arc<dyn RotationObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The field rotated, if one is set.
    pub fn field_name(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// Rotates `key` in `store` (any [`KeyStore`], a decorated stack included).
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::NotFound`]: the key does not exist (nothing is created).
    /// - [`ErrorKind::Conflict`]: the key changed between the read and the write (another
    ///   rotation won); nothing was written by this one.
    /// - [`ErrorKind::InvalidInput`]: a JSON-object value without [`field`](Self::field) or
    ///   [`replace_document`](Self::replace_document); a field's new value that is not text.
    /// - [`ErrorKind::InvalidData`]: [`field`](Self::field) set and the value is not a JSON
    ///   object, or has no such field.
    /// - Whatever the store's `get` and write return, and the generator's errors.
    pub async fn run<S>(&self, store: &S, key: &KeyName) -> Result<Rotated>
    where
        S: KeyStore + ?Sized,
    {
        let result = self.rotate(store, key).await;
        if let Some(observer) = &self.observer {
            let outcome = match &result {
                Ok(done) => RotationOutcome::Rotated {
                    previous: &done.previous,
                    current: &done.current,
                },
                Err(e) if e.kind() == ErrorKind::Conflict => RotationOutcome::Conflict,
                Err(e) => RotationOutcome::Failed(e.kind()),
            };
            observer.on_rotation(&RotationEvent {
                backend: store.backend(),
                key,
                field: self.field.as_deref(),
                outcome,
                at: SystemTime::now(),
            });
        }
        result
    }

    async fn rotate<S>(&self, store: &S, key: &KeyName) -> Result<Rotated>
    where
        S: KeyStore + ?Sized,
    {
        let current = store.get(key).await.map_err(|e| {
            if e.is_not_found() {
                Error::new(
                    ErrorKind::NotFound,
                    format!("key '{key}' does not exist; a rotation replaces a value, it never creates one"),
                )
                .with_backend(store.backend())
                .with_source(e)
            } else {
                e
            }
        })?;
        let value = self.new_value(key, &current.value)?;
        drop(current.value);
        let previous = current.meta;
        let (written, checked) = match previous.version.as_deref() {
            Some(expected) => match store
                .store_if_version(key, value.clone(), Some(expected))
                .await
            {
                Ok(meta) => (meta, true),
                Err(e) if e.kind() == ErrorKind::Unsupported => {
                    (store.store(key, value).await?, false)
                }
                Err(e) if e.kind() == ErrorKind::Conflict => {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "rotation of '{key}' lost a race: version {expected} was replaced \
                             between this rotation's read and its write (another rotation or \
                             write won); this rotation wrote nothing"
                        ),
                    )
                    .with_backend(store.backend())
                    .with_source(e));
                }
                Err(e) => return Err(e),
            },
            None => (store.store(key, value).await?, false),
        };
        Ok(Rotated {
            key: key.clone(),
            previous,
            current: written,
            checked,
        })
    }

    /// The value to write over `current`.
    fn new_value(&self, key: &KeyName, current: &SecretValue) -> Result<SecretValue> {
        match &self.field {
            Some(field) => {
                // Check the document before generating: a caller's generator may have effects.
                if object_fields(current).is_none() {
                    return Err(Error::new(
                        ErrorKind::InvalidData,
                        format!(
                            "key '{key}' is not a JSON object, so it has no field '{}' to rotate",
                            field.escape_debug()
                        ),
                    ));
                }
                let text = self.generator.generate()?;
                replace_field(current, field, &text)
                    .map_err(|e| Error::new(e.kind(), format!("key '{key}': {}", e.message())))
            }
            None => {
                if !self.replace_document
                    && let Some(fields) = object_fields(current)
                {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        format!(
                            "key '{key}' holds a JSON object with fields {}; name the field to \
                             rotate, or ask to replace the whole document",
                            fields.join(", ")
                        ),
                    ));
                }
                self.generator.generate()
            }
        }
    }
}

impl fmt::Debug for Rotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rotation")
            .field("generator", &self.generator)
            .field("field", &self.field)
            .field("replace_document", &self.replace_document)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}
