//! Envelope encryption: a decorator that stores every value encrypted under a data key from a
//! [`CryptoProvider`] (AWS KMS, Vault Transit), so any store — memory, the keyring, a file —
//! holds only ciphertext, and the master key never leaves the provider.
//!
//! - Each value is sealed with AES-256-GCM (the `aes-gcm` crate) under a 256-bit data key; the
//!   provider-encrypted data key is stored in front of it ([`mod@format`] documents the bytes).
//! - Data keys are cached ([`DataKeyCachePolicy`]: max age, max uses), so a write usually needs
//!   no provider call, and a read only when it meets a data key it has not decrypted recently.
//! - The key name and the configured [`EncryptionContext`] are authenticated with every value:
//!   a ciphertext moved to another name, or read under another context, fails with
//!   [`ErrorKind::InvalidData`]. The context is also passed to the provider, which refuses to
//!   decrypt a data key under a different one.
//!
//! ```
//! use std::sync::Arc;
//! use kms_core::envelope::EnvelopeLayer;
//! use kms_core::{EncryptionContext, KeyStore, KeyStoreExt, LocalKeyProvider, MemoryStore, StoreBuilder};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), kms_core::Error> {
//! let provider = Arc::new(LocalKeyProvider::generate());
//! let store = StoreBuilder::new(MemoryStore::new())
//!     .layer(EnvelopeLayer::new(provider).context(EncryptionContext::new().with("service", "payments")))
//!     .build();
//! assert_eq!(store.to_string(), "Envelope(local, Memory)");
//! store.put("db/password", "s3cret").await?;
//! assert_eq!(store.get_value("db/password").await?.expose_str()?, "s3cret");
//! # Ok(()) }
//! ```

pub mod format;
mod key_cache;
mod recent_writes;

use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use async_trait::async_trait;

use key_cache::DataKeyCache;
pub use key_cache::DataKeyCachePolicy;
use recent_writes::RecentWrites;

use crate::crypto::{CryptoProvider, EncryptionContext};
use crate::error::{Error, ErrorKind, Result};
use crate::key_name::{KeyName, KeyPrefix};
use crate::layers::layer::Layer;
use crate::secret::{SecretMeta, SecretValue, StoredSecret};
use crate::store::{Capabilities, KeyStore, check_value_len};
use crate::write::context::CallContext;

/// Configuration of the envelope decorator; a [`Layer`].
#[derive(Clone)]
pub struct EnvelopeLayer {
    provider: Arc<dyn CryptoProvider>,
    context: EncryptionContext,
    policy: DataKeyCachePolicy,
}

impl EnvelopeLayer {
    /// Encrypts under data keys from `provider`, with an empty context and the default
    /// [`DataKeyCachePolicy`].
    pub fn new(provider: Arc<dyn CryptoProvider>) -> Self {
        Self {
            provider,
            context: EncryptionContext::new(),
            policy: DataKeyCachePolicy::default(),
        }
    }

    /// Sets the encryption context bound to every value and data key (non-secret).
    #[must_use]
    pub fn context(mut self, context: EncryptionContext) -> Self {
        self.context = context;
        self
    }

    /// Sets how data keys are reused.
    #[must_use]
    pub fn cache_policy(mut self, policy: DataKeyCachePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Wraps `inner` directly (without a [`StoreBuilder`](crate::StoreBuilder)).
    pub fn wrap<S: KeyStore>(&self, inner: S) -> Envelope<S> {
        Envelope {
            inner,
            provider: self.provider.clone(),
            context: self.context.clone(),
            cache: DataKeyCache::new(self.policy),
            recent: RecentWrites::default(),
        }
    }
}

impl fmt::Debug for EnvelopeLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvelopeLayer")
            .field("provider", &format_args!("{}", self.provider))
            .field("context", &self.context)
            .field("policy", &self.policy)
            .finish()
    }
}

impl Layer for EnvelopeLayer {
    fn layer(&self, inner: Arc<dyn KeyStore>) -> Arc<dyn KeyStore> {
        Arc::new(self.wrap(inner))
    }
}

/// The envelope-encryption decorator. See the [module docs](self).
pub struct Envelope<S> {
    inner: S,
    provider: Arc<dyn CryptoProvider>,
    context: EncryptionContext,
    cache: DataKeyCache,
    recent: RecentWrites,
}

impl<S: KeyStore> Envelope<S> {
    /// The store this one wraps.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn aad(&self, header: &[u8], key: &KeyName) -> Vec<u8> {
        let mut aad = Vec::with_capacity(header.len() + key.as_str().len() + 64);
        aad.extend_from_slice(header);
        aad.extend_from_slice(&(key.as_str().len() as u32).to_be_bytes());
        aad.extend_from_slice(key.as_str().as_bytes());
        aad.extend_from_slice(&self.context.canonical_bytes());
        aad
    }

    async fn data_key_for_encrypt(&self) -> Result<(SecretValue, Vec<u8>)> {
        if let Some(found) = self.cache.take_for_encrypt() {
            return Ok(found);
        }
        let issued = self.provider.generate_data_key(&self.context).await?;
        self.cache
            .put_issued(issued.plaintext.clone(), issued.ciphertext.clone());
        Ok((issued.plaintext, issued.ciphertext))
    }

    async fn data_key_for_decrypt(&self, encrypted: &[u8]) -> Result<SecretValue> {
        if let Some(found) = self.cache.decrypted(encrypted) {
            return Ok(found);
        }
        let plaintext = self.provider.decrypt(encrypted, &self.context).await?;
        self.cache.put_decrypted(encrypted, plaintext.clone());
        Ok(plaintext)
    }

    async fn seal(&self, key: &KeyName, value: &SecretValue) -> Result<SecretValue> {
        let (data_key, encrypted_key) = self.data_key_for_encrypt().await?;
        let cipher = cipher(&data_key)?;
        let mut out = format::header(&encrypted_key)?;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = self.aad(&out, key);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: value.expose_secret(),
                    aad: &aad,
                },
            )
            .map_err(|_| Error::new(ErrorKind::Backend, "envelope: AES-GCM encryption failed"))?;
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(SecretValue::new(out))
    }

    async fn open(&self, key: &KeyName, stored: StoredSecret) -> Result<StoredSecret> {
        let bytes = stored.value.expose_secret();
        let parsed = format::parse(bytes)?;
        let data_key = self.data_key_for_decrypt(parsed.encrypted_key).await?;
        let cipher = cipher(&data_key)?;
        let aad = self.aad(parsed.header, key);
        let plain = cipher
            .decrypt(Nonce::from_slice(parsed.nonce), Payload { msg: parsed.sealed, aad: &aad })
            .map_err(|_| {
                Error::new(
                    ErrorKind::InvalidData,
                    format!(
                        "envelope: value of '{key}' failed authentication (tampered, stored under another name, or another encryption context)"
                    ),
                )
            })?;
        Ok(StoredSecret::with_meta(
            SecretValue::new(plain),
            stored.meta,
        ))
    }
}

fn cipher(data_key: &SecretValue) -> Result<Aes256Gcm> {
    let bytes = data_key.expose_secret();
    if bytes.len() != 32 {
        return Err(Error::new(
            ErrorKind::Configuration,
            format!(
                "envelope: data key is {} bytes, AES-256 needs 32",
                bytes.len()
            ),
        ));
    }
    Ok(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(bytes)))
}

impl<S: KeyStore> fmt::Display for Envelope<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Envelope({}, {})", self.provider.provider(), self.inner)
    }
}

impl<S: KeyStore> fmt::Debug for Envelope<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("inner", &self.inner)
            .field("provider", &format_args!("{}", self.provider))
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: KeyStore> KeyStore for Envelope<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn capabilities(&self) -> Capabilities {
        let inner = self.inner.capabilities();
        inner.with_max_value_len(inner.max_value_len.saturating_sub(format::MAX_OVERHEAD))
    }

    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        let stored = self.inner.get(key).await?;
        self.open(key, stored).await
    }

    fn get_now(&self, _key: &KeyName) -> Option<Result<StoredSecret>> {
        // Declined: what is stored below is ciphertext, and decrypting it needs the provider
        // (asynchronous). A cache belongs above this layer.
        None
    }
    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        let stored = self.inner.get_version(key, version).await?;
        self.open(key, stored).await
    }

    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        check_value_len(&value, self.capabilities().max_value_len)?;
        let Some(write) = CallContext::current() else {
            let sealed = self.seal(key, &value).await?;
            return self.inner.store(key, sealed).await;
        };
        // A repeated attempt of one logical write sends the same ciphertext again, so the
        // backend below can recognise the repeat (AWS compares the value sent with a known
        // `ClientRequestToken`); it is reused only if it still opens to the value asked for.
        if write.is_repeat()
            && let Some(sealed) = self.recent.find(write.id(), key)
        {
            let opened = self.open(key, StoredSecret::new(sealed.clone())).await.ok();
            if opened.is_some_and(|o| o.value == value) {
                return self.inner.store(key, sealed).await;
            }
        }
        let sealed = self.seal(key, &value).await?;
        self.recent.remember(write.id(), key, sealed.clone());
        self.inner.store(key, sealed).await
    }

    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> Result<SecretMeta> {
        check_value_len(&value, self.capabilities().max_value_len)?;
        let sealed = self.seal(key, &value).await?;
        self.inner.store_if_version(key, sealed, expected).await
    }

    async fn remove(&self, key: &KeyName) -> Result<()> {
        self.inner.remove(key).await
    }

    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        self.inner.list(prefix).await
    }

    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }
}
