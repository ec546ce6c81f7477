//! [`CryptoProvider`]: a key-management service that encrypts, decrypts and issues data keys.
//!
//! AWS KMS and Vault Transit implement it (in their backend crates), so the
//! envelope decorator (`envelope` module, feature `envelope`) can protect any store with either.

#[cfg(feature = "envelope")]
pub(crate) mod local;

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;

use crate::error::Result;
use crate::secret::SecretValue;

/// Non-secret, authenticated key/value pairs bound to a ciphertext (AWS KMS "encryption
/// context", Vault Transit "context"/associated data). Decryption with a different context
/// fails. Never put secrets here: providers log contexts in their audit trails.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct EncryptionContext(BTreeMap<String, String>);

impl EncryptionContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a pair.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    /// Adds a pair in place.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.insert(key.into(), value.into());
    }

    /// The pairs, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A canonical byte encoding (length-prefixed, sorted) for use as associated data.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in &self.0 {
            for part in [k, v] {
                out.extend_from_slice(&(part.len() as u32).to_be_bytes());
                out.extend_from_slice(part.as_bytes());
            }
        }
        out
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EncryptionContext {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// A data key issued by a [`CryptoProvider`]: the plaintext key to encrypt with locally, and
/// the same key encrypted under the provider's master key, to store beside the data.
#[derive(Clone)]
pub struct DataKey {
    /// The plaintext key bytes (32 bytes for AES-256). Zeroized on drop.
    pub plaintext: SecretValue,
    /// The key encrypted by the provider (opaque; what `decrypt` takes back).
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("plaintext", &self.plaintext)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// The operations of a [`CryptoProvider`], for metric labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CryptoOperation {
    /// `encrypt`.
    Encrypt,
    /// `decrypt`.
    Decrypt,
    /// `generate_data_key`.
    GenerateDataKey,
}

impl CryptoOperation {
    /// A stable label: `"encrypt"`, `"decrypt"`, `"generate_data_key"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Encrypt => "encrypt",
            Self::Decrypt => "decrypt",
            Self::GenerateDataKey => "generate_data_key",
        }
    }

    /// Every operation.
    pub const ALL: [CryptoOperation; 3] = [Self::Encrypt, Self::Decrypt, Self::GenerateDataKey];
}

/// A key-management service holding a master key: AWS KMS, Vault Transit.
///
/// Dyn-compatible (`Arc<dyn CryptoProvider>`). The master key is chosen when the provider is
/// built (a KMS key id or alias, a Transit key name).
///
/// Errors: a ciphertext that does not decrypt (tampered, other key, other context) is
/// [`ErrorKind::InvalidData`](crate::ErrorKind::InvalidData) or, where the provider cannot
/// tell those apart from an authorization failure, the kind it reports; a disabled or missing
/// master key is [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) /
/// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) as the backend crate documents.
#[async_trait]
pub trait CryptoProvider: fmt::Display + fmt::Debug + Send + Sync + 'static {
    /// A short static label for metrics and logs (`"aws_kms"`, `"vault_transit"`, `"local"`).
    fn provider(&self) -> &'static str;

    /// Encrypts a small plaintext (at most 4 KiB for AWS KMS) under the master key.
    async fn encrypt(
        &self,
        plaintext: &SecretValue,
        context: &EncryptionContext,
    ) -> Result<Vec<u8>>;

    /// Decrypts what [`encrypt`](Self::encrypt) (or [`generate_data_key`](Self::generate_data_key))
    /// returned, under the same context.
    async fn decrypt(&self, ciphertext: &[u8], context: &EncryptionContext) -> Result<SecretValue>;

    /// Issues a fresh 256-bit data key, in plaintext and encrypted under the master key.
    async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey>;
}

macro_rules! forward_crypto_provider {
    ($($ptr:ident),*) => {$(
        #[async_trait]
        impl<T: CryptoProvider + ?Sized> CryptoProvider for std::sync::$ptr<T> {
            fn provider(&self) -> &'static str {
                (**self).provider()
            }
            async fn encrypt(&self, plaintext: &SecretValue, context: &EncryptionContext) -> Result<Vec<u8>> {
                (**self).encrypt(plaintext, context).await
            }
            async fn decrypt(&self, ciphertext: &[u8], context: &EncryptionContext) -> Result<SecretValue> {
                (**self).decrypt(ciphertext, context).await
            }
            async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey> {
                (**self).generate_data_key(context).await
            }
        }
    )*};
}

forward_crypto_provider!(Arc);
