//! [`LocalKeyProvider`]: a [`CryptoProvider`] whose master key is held in process memory.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use async_trait::async_trait;

use super::{CryptoOperation, CryptoProvider, DataKey, EncryptionContext};
use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretValue;

/// A [`CryptoProvider`] with a 256-bit AES-GCM master key in process memory.
///
/// For tests, development and single-host setups where the master key comes from somewhere
/// safe (a file readable only by the service, a keyring). It gives none of a KMS's guarantees
/// (the key is in the process, there is no audit trail); use AWS KMS or Vault Transit in
/// production. It counts its calls, which tests of data-key caching use.
pub struct LocalKeyProvider {
    master: SecretValue,
    calls: [AtomicU64; 3],
}

impl LocalKeyProvider {
    /// A provider with a fresh random master key (lost when dropped).
    pub fn generate() -> Self {
        let mut key = vec![0u8; 32];
        OsRng.fill_bytes(&mut key);
        Self::from_key(SecretValue::new(key)).expect("32 bytes")
    }

    /// A provider with the given 32-byte master key.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] if the key is not 32 bytes.
    pub fn from_key(master: SecretValue) -> Result<Self> {
        if master.len() != 32 {
            return Err(Error::new(
                ErrorKind::Configuration,
                format!("local master key is {} bytes, expected 32", master.len()),
            ));
        }
        Ok(Self {
            master,
            calls: Default::default(),
        })
    }

    /// How many times `op` was called.
    pub fn calls(&self, op: CryptoOperation) -> u64 {
        self.calls[op as usize].load(Ordering::SeqCst)
    }

    fn count(&self, op: CryptoOperation) {
        self.calls[op as usize].fetch_add(1, Ordering::SeqCst);
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.master.expose_secret()))
    }

    fn seal(&self, plaintext: &[u8], context: &EncryptionContext) -> Result<Vec<u8>> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = context.canonical_bytes();
        let sealed = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| {
                Error::new(ErrorKind::Backend, "local: encryption failed").with_backend("local")
            })?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }
}

impl fmt::Display for LocalKeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalKeyProvider")
    }
}

impl fmt::Debug for LocalKeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKeyProvider")
            .field("master", &self.master)
            .finish()
    }
}

#[async_trait]
impl CryptoProvider for LocalKeyProvider {
    fn provider(&self) -> &'static str {
        "local"
    }

    async fn encrypt(
        &self,
        plaintext: &SecretValue,
        context: &EncryptionContext,
    ) -> Result<Vec<u8>> {
        self.count(CryptoOperation::Encrypt);
        self.seal(plaintext.expose_secret(), context)
    }

    async fn decrypt(&self, ciphertext: &[u8], context: &EncryptionContext) -> Result<SecretValue> {
        self.count(CryptoOperation::Decrypt);
        let fail = || {
            Error::new(
                ErrorKind::InvalidData,
                "local: ciphertext does not decrypt under this master key and encryption context",
            )
            .with_backend("local")
        };
        if ciphertext.len() < 12 + 16 {
            return Err(fail());
        }
        let (nonce, sealed) = ciphertext.split_at(12);
        let aad = context.canonical_bytes();
        self.cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map(SecretValue::new)
            .map_err(|_| fail())
    }

    async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey> {
        self.count(CryptoOperation::GenerateDataKey);
        let mut key = vec![0u8; 32];
        OsRng.fill_bytes(&mut key);
        let plaintext = SecretValue::new(key);
        let ciphertext = self.seal(plaintext.expose_secret(), context)?;
        Ok(DataKey {
            plaintext,
            ciphertext,
        })
    }
}
