//! [`AwsKmsProvider`]: AWS KMS as a kms-core [`CryptoProvider`].

use std::collections::HashMap;
use std::fmt;

use aws_config::SdkConfig;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use kms_core::{
    CryptoProvider, DataKey, EncryptionContext, Error, ErrorKind, Result, SecretValue, async_trait,
};

use crate::KMS_PROVIDER;
use crate::error_map::{Call, Failure, makes_one_attempt, to_error};
use crate::runtime;

/// The largest plaintext KMS `Encrypt` takes.
pub const MAX_KMS_PLAINTEXT: usize = 4096;

/// AWS KMS as a [`CryptoProvider`]: `Encrypt`, `Decrypt` and `GenerateDataKey` (AES-256)
/// under one KMS key, named by key id, key ARN, alias (`alias/payments`) or alias ARN.
///
/// The [`EncryptionContext`] is sent as KMS's encryption context: it is bound to the
/// ciphertext, logged in CloudTrail, and a `Decrypt` with any other context fails with
/// [`ErrorKind::InvalidData`]. Wrap a store with kms-core's envelope decorator to give it KMS
/// protection:
///
/// ```no_run
/// # // no_run: needs an AWS account holding `alias/payments`; the README's example runs the
/// # // same code against the moto emulator.
/// # async fn demo() -> kms_core::Result<()> {
/// use std::sync::Arc;
/// use kms_backend_aws::{AwsConnection, AwsKmsProvider};
/// use kms_core::envelope::EnvelopeLayer;
/// use kms_core::{MemoryStore, StoreBuilder};
///
/// let config = AwsConnection::new().load().await?;
/// let kms = AwsKmsProvider::new(&config, "alias/payments")?;
/// let store = StoreBuilder::new(MemoryStore::new())
///     .layer(EnvelopeLayer::new(Arc::new(kms)))
///     .build();
/// # Ok(()) }
/// ```
///
/// Errors: a key or alias that does not exist (KMS `NotFoundException`) is
/// [`ErrorKind::Configuration`] — the provider names a key that is not there — and never
/// `NotFound`, which a store above would pass on as "the secret does not exist" (and a
/// negative cache would remember); a disabled key or one pending deletion
/// (`DisabledException`, `KMSInvalidStateException`) is `Unavailable` marked exhausted, so
/// the retry layer does not retry it; a ciphertext that does not decrypt is `InvalidData`;
/// `AccessDenied` is `PermissionDenied`; throttling is `RateLimited`.
///
/// Plaintexts returned by `Decrypt` and `GenerateDataKey` are moved into zeroizing
/// [`SecretValue`]s; the SDK's HTTP buffers are not zeroized.
#[derive(Clone)]
pub struct AwsKmsProvider {
    client: Client,
    key_id: String,
}

impl AwsKmsProvider {
    /// A provider over a client made from `config`, using the KMS key `key_id` (key id, key
    /// ARN, alias name `alias/…` or alias ARN).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] when `config` has no region or `key_id` is empty.
    pub fn new(config: &SdkConfig, key_id: impl Into<String>) -> Result<Self> {
        Self::from_client(Client::new(config), key_id)
    }

    /// A provider over a client the service already has.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn from_client(client: Client, key_id: impl Into<String>) -> Result<Self> {
        let key_id = key_id.into();
        crate::connection::require_region(client.config().region(), "AWS KMS provider")?;
        if key_id.trim().is_empty() {
            return Err(Error::new(
                ErrorKind::Configuration,
                "AWS KMS provider: the KMS key id is empty (give a key id, key ARN or alias/…)",
            )
            .with_backend(KMS_PROVIDER));
        }
        Ok(Self { client, key_id })
    }

    /// The KMS key id, ARN or alias.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The SDK client, for calls this provider does not make (key creation, rotation).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Maps a failed KMS `call` of this provider (named with its key in the message).
    fn fail<F: Into<Failure>>(&self, call: &str) -> impl FnOnce(F) -> Error + '_ {
        let what = format!("KMS {call} under {}", self.key_id);
        let one_attempt = makes_one_attempt(self.client.config().retry_config());
        move |failure| {
            to_error(
                failure.into().one_attempt(one_attempt),
                Call::Kms,
                KMS_PROVIDER,
                &what,
            )
        }
    }
}

fn context_map(context: &EncryptionContext) -> Option<HashMap<String, String>> {
    (!context.is_empty()).then(|| {
        context
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    })
}

fn missing(what: &str) -> Error {
    Error::new(
        ErrorKind::InvalidData,
        format!("{what}: answer without the expected field"),
    )
    .with_backend(KMS_PROVIDER)
}

#[async_trait]
impl CryptoProvider for AwsKmsProvider {
    fn provider(&self) -> &'static str {
        KMS_PROVIDER
    }

    async fn encrypt(
        &self,
        plaintext: &SecretValue,
        context: &EncryptionContext,
    ) -> Result<Vec<u8>> {
        if plaintext.len() > MAX_KMS_PLAINTEXT {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "KMS Encrypt takes at most {MAX_KMS_PLAINTEXT} bytes, got {}; use envelope \
                     encryption for larger values",
                    plaintext.len()
                ),
            )
            .with_backend(KMS_PROVIDER));
        }
        runtime::require(KMS_PROVIDER, "KMS Encrypt")?;
        let out = self
            .client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(plaintext.expose_secret().to_vec()))
            .set_encryption_context(context_map(context))
            .send()
            .await
            .map_err(self.fail("Encrypt"))?;
        out.ciphertext_blob
            .map(Blob::into_inner)
            .ok_or_else(|| missing("Encrypt"))
    }

    async fn decrypt(&self, ciphertext: &[u8], context: &EncryptionContext) -> Result<SecretValue> {
        runtime::require(KMS_PROVIDER, "KMS Decrypt")?;
        let out = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(ciphertext.to_vec()))
            .set_encryption_context(context_map(context))
            .send()
            .await
            .map_err(self.fail("Decrypt"))?;
        out.plaintext
            .map(|p| SecretValue::new(p.into_inner()))
            .ok_or_else(|| missing("Decrypt"))
    }

    async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey> {
        runtime::require(KMS_PROVIDER, "KMS GenerateDataKey")?;
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(context_map(context))
            .send()
            .await
            .map_err(self.fail("GenerateDataKey"))?;
        match (out.plaintext, out.ciphertext_blob) {
            (Some(plaintext), Some(ciphertext)) if plaintext.as_ref().len() == 32 => Ok(DataKey {
                plaintext: SecretValue::new(plaintext.into_inner()),
                ciphertext: ciphertext.into_inner(),
            }),
            (Some(plaintext), Some(_)) => Err(Error::new(
                ErrorKind::InvalidData,
                format!(
                    "GenerateDataKey: a {}-byte key where AES-256 needs 32",
                    plaintext.as_ref().len()
                ),
            )
            .with_backend(KMS_PROVIDER)),
            _ => Err(missing("GenerateDataKey")),
        }
    }
}

impl fmt::Display for AwsKmsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AwsKms({})", self.key_id)
    }
}

impl fmt::Debug for AwsKmsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKmsProvider")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}
