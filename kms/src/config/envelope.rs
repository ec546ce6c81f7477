//! `envelope`: envelope encryption ([`kms_core::envelope::EnvelopeLayer`]) and its key
//! provider: a local key ([`kms_core::LocalKeyProvider`]), AWS KMS
//! (`kms_backend_aws::AwsKmsProvider`) or Vault Transit
//! (`kms_backend_vault::VaultTransitProvider`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::aws::AwsConnectionConfig;
use super::vault::VaultConnectionConfig;
use crate::secret_ref::SecretRef;
use crate::{duration, scalar};

/// `[stores.NAME.envelope]` / `envelope.*`: every value is encrypted under a data key that a
/// key provider wraps.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeConfig {
    /// Whether the layer is on (default true once the table exists).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub enabled: Option<bool>,
    /// `local`, `local-ephemeral`, `aws-kms` or `vault-transit`. Required.
    pub provider: Option<String>,
    /// `local`: the 32-byte master key, base64 (or a `file:` holding the 32 raw bytes).
    pub master_key: Option<SecretRef>,
    /// `aws-kms`: the KMS key id, ARN or alias; `vault-transit`: the Transit key name.
    pub key: Option<String>,
    /// `vault-transit`: the Transit mount (default `transit`).
    pub transit_mount: Option<String>,
    /// `vault-transit`: create the key (derived `aes256-gcm96`) if it does not exist.
    #[serde(default, deserialize_with = "scalar::opt")]
    pub create_key: Option<bool>,
    /// The encryption context bound to every value (`context.tenant = "acme"`).
    #[serde(default)]
    pub context: BTreeMap<String, String>,
    /// How data keys are reused.
    #[serde(default)]
    pub key_cache: KeyCacheConfig,
    /// `aws-kms`: the AWS connection, when the store is not `aws` (default: the store's own,
    /// else the default chain).
    pub aws: Option<AwsConnectionConfig>,
    /// `vault-transit`: the Vault client, when the store is not `vault` (default: the
    /// store's own).
    pub vault: Option<VaultConnectionConfig>,
}

/// `envelope.key_cache.*`: maps onto [`kms_core::envelope::DataKeyCachePolicy`] (defaults
/// 5 min, 10,000 uses, 1,000 decrypted keys).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyCacheConfig {
    /// The longest a data key is used or remembered (`0s`: never reused).
    #[serde(default, deserialize_with = "duration::opt")]
    pub max_age: Option<Duration>,
    /// How many values one data key may encrypt (at least 1).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub max_uses: Option<u64>,
    /// How many decrypted data keys are remembered.
    #[serde(default, deserialize_with = "scalar::opt")]
    pub max_decrypted: Option<usize>,
}

/// The accepted `provider` values.
#[cfg(feature = "envelope")]
pub(crate) const PROVIDERS: &str = "`local`, `local-ephemeral`, `aws-kms`, `vault-transit`";

/// What the backend hands the envelope builder so providers can share its connection.
#[derive(Default)]
pub(crate) struct Shared {
    #[cfg(feature = "vault")]
    pub(crate) vault: Option<kms_backend_vault::VaultClient>,
    #[cfg(feature = "aws")]
    pub(crate) aws: Option<kms_backend_aws::sdk::aws_config::SdkConfig>,
}

#[cfg(feature = "envelope")]
pub(crate) use build::provider;

#[cfg(feature = "envelope")]
mod build {
    use std::sync::Arc;

    use base64::Engine as _;
    use kms_core::envelope::{DataKeyCachePolicy, EnvelopeLayer};
    use kms_core::{CryptoProvider, EncryptionContext, LocalKeyProvider, Result, SecretValue};

    use super::{EnvelopeConfig, PROVIDERS, Shared};
    use crate::config::At;
    use crate::error::config_error;

    /// The provider (unwrapped: the caller may instrument it) and a function that makes the
    /// layer over it.
    pub(crate) async fn provider(
        e: &EnvelopeConfig,
        shared: &Shared,
        at: &At,
    ) -> Result<(
        Arc<dyn CryptoProvider>,
        impl FnOnce(Arc<dyn CryptoProvider>) -> EnvelopeLayer,
    )> {
        let key = |k: &str| at.key(&format!("envelope.{k}"));
        let name = e.provider.as_deref().ok_or_else(|| {
            config_error(
                &key("provider"),
                format_args!("missing: expected one of {PROVIDERS}"),
            )
        })?;
        let unused = |field: &str, set: bool| -> Result<()> {
            if set {
                Err(config_error(
                    &key(field),
                    format_args!("not used by provider `{name}`"),
                ))
            } else {
                Ok(())
            }
        };
        unused("master_key", e.master_key.is_some() && name != "local")?;
        unused(
            "key",
            e.key.is_some() && !matches!(name, "aws-kms" | "vault-transit"),
        )?;
        unused(
            "transit_mount",
            e.transit_mount.is_some() && name != "vault-transit",
        )?;
        unused(
            "create_key",
            e.create_key.is_some() && name != "vault-transit",
        )?;
        unused("aws", e.aws.is_some() && name != "aws-kms")?;
        unused("vault", e.vault.is_some() && name != "vault-transit")?;
        let provider: Arc<dyn CryptoProvider> = match name {
            "local" => {
                let k = e.master_key.as_ref().ok_or_else(|| {
                    config_error(&key("master_key"), "missing: provider `local` needs a 32-byte master key (base64), e.g. `env:KMS_MASTER_KEY`")
                })?;
                Arc::new(
                    LocalKeyProvider::from_key(master_key(k, &key("master_key"))?)
                        .map_err(|e| config_error(&key("master_key"), e.message()))?,
                )
            }
            "local-ephemeral" => Arc::new(LocalKeyProvider::generate()),
            "aws-kms" => aws_kms(e, shared, at).await?,
            "vault-transit" => vault_transit(e, shared, at).await?,
            other => {
                return Err(config_error(
                    &key("provider"),
                    format_args!("unknown value {other:?}: expected one of {PROVIDERS}"),
                ));
            }
        };
        let mut policy = DataKeyCachePolicy::default();
        if let Some(a) = e.key_cache.max_age {
            policy.max_age = a;
        }
        if let Some(n) = e.key_cache.max_uses {
            if n == 0 {
                return Err(config_error(
                    &key("key_cache.max_uses"),
                    "invalid value 0: expected at least 1",
                ));
            }
            policy.max_uses = n;
        }
        if let Some(n) = e.key_cache.max_decrypted {
            policy.max_decrypted = n;
        }
        let mut context = EncryptionContext::new();
        for (k, v) in &e.context {
            context.insert(k.clone(), v.clone());
        }
        Ok((provider, move |p: Arc<dyn CryptoProvider>| {
            EnvelopeLayer::new(p).context(context).cache_policy(policy)
        }))
    }

    /// A 32-byte key: base64 text, or (from a file) the raw bytes.
    fn master_key(k: &crate::SecretRef, key: &str) -> Result<SecretValue> {
        let bytes = k.resolve_bytes(key)?;
        let text = std::str::from_utf8(bytes.expose_secret())
            .ok()
            .map(str::trim);
        if let Some(decoded) =
            text.and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
            && decoded.len() == 32
        {
            return Ok(SecretValue::new(decoded));
        }
        if bytes.len() == 32 {
            return Ok(bytes);
        }
        Err(config_error(
            key,
            "invalid master key (value not shown): expected 32 bytes, base64-encoded (`openssl rand -base64 32`)",
        ))
    }

    #[cfg(feature = "aws")]
    async fn aws_kms(
        e: &EnvelopeConfig,
        shared: &Shared,
        at: &At,
    ) -> Result<Arc<dyn CryptoProvider>> {
        let key = e.key.as_deref().ok_or_else(|| {
            config_error(
                &at.key("envelope.key"),
                "missing: provider `aws-kms` needs the KMS key id, ARN or alias",
            )
        })?;
        let sdk = match (&e.aws, &shared.aws) {
            (Some(c), _) => crate::config::aws::build_sdk_config(c, at, "envelope.aws").await?,
            (None, Some(sdk)) => sdk.clone(),
            (None, None) => {
                crate::config::aws::build_sdk_config(&Default::default(), at, "envelope.aws")
                    .await?
            }
        };
        let provider = kms_backend_aws::AwsKmsProvider::new(&sdk, key)
            .map_err(|e| crate::error::while_applying(&at.key("envelope.key"), e))?;
        Ok(Arc::new(provider))
    }

    #[cfg(not(feature = "aws"))]
    async fn aws_kms(_: &EnvelopeConfig, _: &Shared, at: &At) -> Result<Arc<dyn CryptoProvider>> {
        Err(config_error(
            &at.key("envelope.provider"),
            "`aws-kms` is not compiled in: enable the kms feature `aws`",
        ))
    }

    #[cfg(feature = "vault")]
    async fn vault_transit(
        e: &EnvelopeConfig,
        shared: &Shared,
        at: &At,
    ) -> Result<Arc<dyn CryptoProvider>> {
        use kms_backend_vault::VaultTransitProvider;
        let key = e.key.as_deref().ok_or_else(|| {
            config_error(
                &at.key("envelope.key"),
                "missing: provider `vault-transit` needs the Transit key name",
            )
        })?;
        let client = match (&e.vault, &shared.vault) {
            (Some(c), _) => crate::config::vault::build_client(c, at, "envelope.vault").await?,
            (None, Some(client)) => client.clone(),
            (None, None) => {
                return Err(config_error(
                    &at.key("envelope.vault.address"),
                    "missing: provider `vault-transit` over a non-Vault store needs `envelope.vault` (address, auth)",
                ));
            }
        };
        let mut provider = VaultTransitProvider::new(client, key)
            .map_err(|err| crate::error::while_applying(&at.key("envelope.key"), err))?;
        if let Some(m) = &e.transit_mount {
            provider = provider.with_mount(m).map_err(|err| {
                crate::error::while_applying(&at.key("envelope.transit_mount"), err)
            })?;
        }
        if e.create_key == Some(true) {
            provider
                .ensure_key()
                .await
                .map_err(|err| crate::error::while_applying(&at.key("envelope.create_key"), err))?;
        }
        Ok(Arc::new(provider))
    }

    #[cfg(not(feature = "vault"))]
    async fn vault_transit(
        _: &EnvelopeConfig,
        _: &Shared,
        at: &At,
    ) -> Result<Arc<dyn CryptoProvider>> {
        Err(config_error(
            &at.key("envelope.provider"),
            "`vault-transit` is not compiled in: enable the kms feature `vault`",
        ))
    }
}
