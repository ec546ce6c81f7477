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

#[cfg(feature = "envelope")]
pub(crate) use build::{EnvelopePlan, Shared};

#[cfg(feature = "envelope")]
mod build {
    use std::sync::Arc;

    use base64::Engine as _;
    use kms_core::envelope::{DataKeyCachePolicy, EnvelopeLayer};
    use kms_core::{CryptoProvider, EncryptionContext, LocalKeyProvider, Result, SecretValue};

    use super::{EnvelopeConfig, PROVIDERS};
    use crate::config::at::At;
    use crate::error::config_error;
    #[cfg(any(feature = "vault", feature = "aws"))]
    use crate::error::while_applying;

    /// What the backend hands the envelope layer so that a provider of the same service
    /// shares its connection (one login, one credential chain).
    #[derive(Default)]
    pub(crate) struct Shared {
        #[cfg(feature = "vault")]
        vault: Option<kms_backend_vault::VaultClient>,
        #[cfg(feature = "aws")]
        aws: Option<kms_backend_aws::sdk::aws_config::SdkConfig>,
    }

    impl Shared {
        /// The Vault store's client.
        #[cfg(feature = "vault")]
        pub(crate) fn vault(client: kms_backend_vault::VaultClient) -> Self {
            Self {
                vault: Some(client),
                #[cfg(feature = "aws")]
                aws: None,
            }
        }

        /// The Secrets Manager store's SDK configuration.
        #[cfg(feature = "aws")]
        pub(crate) fn aws(sdk: kms_backend_aws::sdk::aws_config::SdkConfig) -> Self {
            Self {
                #[cfg(feature = "vault")]
                vault: None,
                aws: Some(sdk),
            }
        }

        /// Makes `plan`'s key provider: reads a local master key, or sets up AWS KMS or Vault
        /// Transit over this connection unless `envelope.aws` / `envelope.vault` give one.
        /// Unwrapped: the caller may instrument it.
        pub(crate) async fn provider(
            &self,
            plan: &EnvelopePlan,
        ) -> Result<Arc<dyn CryptoProvider>> {
            let at = &plan.at;
            Ok(match &plan.provider {
                Provider::Local(k) => {
                    let key = at.key("envelope.master_key");
                    Arc::new(
                        LocalKeyProvider::from_key(master_key(k, &key)?)
                            .map_err(|e| config_error(&key, e.message()))?,
                    )
                }
                Provider::LocalEphemeral => Arc::new(LocalKeyProvider::generate()),
                #[cfg(feature = "aws")]
                Provider::AwsKms { key, connection } => {
                    let sdk = match (connection, &self.aws) {
                        (Some(c), _) => {
                            crate::config::aws::build_sdk_config(c, at, "envelope.aws").await?
                        }
                        (None, Some(sdk)) => sdk.clone(),
                        (None, None) => {
                            crate::config::aws::build_sdk_config(
                                &Default::default(),
                                at,
                                "envelope.aws",
                            )
                            .await?
                        }
                    };
                    let provider = kms_backend_aws::AwsKmsProvider::new(&sdk, key)
                        .map_err(|e| while_applying(&at.key("envelope.key"), e))?;
                    Arc::new(provider)
                }
                #[cfg(feature = "vault")]
                Provider::VaultTransit {
                    key,
                    connection,
                    mount,
                    create_key,
                } => {
                    use kms_backend_vault::VaultTransitProvider;
                    let client = match (connection, &self.vault) {
                        (Some(c), _) => {
                            crate::config::vault::build_client(c, at, "envelope.vault").await?
                        }
                        (None, Some(client)) => client.clone(),
                        (None, None) => {
                            return Err(config_error(
                                &at.key("envelope.vault.address"),
                                "missing: provider `vault-transit` over a non-Vault store needs `envelope.vault` (address, auth)",
                            ));
                        }
                    };
                    let mut provider = VaultTransitProvider::new(client, key)
                        .map_err(|err| while_applying(&at.key("envelope.key"), err))?;
                    if let Some(m) = mount {
                        provider = provider.with_mount(m).map_err(|err| {
                            while_applying(&at.key("envelope.transit_mount"), err)
                        })?;
                    }
                    if *create_key {
                        provider
                            .ensure_key()
                            .await
                            .map_err(|err| while_applying(&at.key("envelope.create_key"), err))?;
                    }
                    Arc::new(provider)
                }
            })
        }
    }

    /// The key provider, with its key.
    enum Provider {
        /// `local`: the master key (read when the provider is made).
        Local(crate::SecretRef),
        /// `local-ephemeral`.
        LocalEphemeral,
        /// `aws-kms`: the KMS key id, ARN or alias, and `envelope.aws`.
        #[cfg(feature = "aws")]
        AwsKms {
            key: String,
            connection: Option<super::AwsConnectionConfig>,
        },
        /// `vault-transit`: the Transit key name, `envelope.vault`, `transit_mount` and
        /// `create_key`.
        #[cfg(feature = "vault")]
        VaultTransit {
            key: String,
            connection: Option<Box<super::VaultConnectionConfig>>,
            mount: Option<String>,
            create_key: bool,
        },
    }

    /// The envelope options, validated (and where they came from): which provider, the
    /// data-key policy and the encryption context. Making it reads no key and reaches no service; the provider is
    /// made by [`Shared::provider`], once the backend (whose connection it may share) is
    /// open.
    pub(crate) struct EnvelopePlan {
        at: At,
        provider: Provider,
        policy: DataKeyCachePolicy,
        context: EncryptionContext,
    }

    impl EnvelopePlan {
        /// Validates `e`.
        pub(crate) fn new(e: &EnvelopeConfig, at: &At) -> Result<Self> {
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
            let provider = match name {
                "local" => Provider::Local(e.master_key.clone().ok_or_else(|| {
                    config_error(
                        &key("master_key"),
                        "missing: provider `local` needs a 32-byte master key (base64), e.g. `env:KMS_MASTER_KEY`",
                    )
                })?),
                "local-ephemeral" => Provider::LocalEphemeral,
                #[cfg(feature = "aws")]
                "aws-kms" => Provider::AwsKms {
                    key: e.key.clone().ok_or_else(|| {
                        config_error(
                            &key("key"),
                            "missing: provider `aws-kms` needs the KMS key id, ARN or alias",
                        )
                    })?,
                    connection: e.aws.clone(),
                },
                #[cfg(not(feature = "aws"))]
                "aws-kms" => {
                    return Err(config_error(
                        &key("provider"),
                        "`aws-kms` is not compiled in: enable the kms feature `aws`",
                    ));
                }
                #[cfg(feature = "vault")]
                "vault-transit" => Provider::VaultTransit {
                    key: e.key.clone().ok_or_else(|| {
                        config_error(
                            &key("key"),
                            "missing: provider `vault-transit` needs the Transit key name",
                        )
                    })?,
                    connection: e.vault.clone().map(Box::new),
                    mount: e.transit_mount.clone(),
                    create_key: e.create_key == Some(true),
                },
                #[cfg(not(feature = "vault"))]
                "vault-transit" => {
                    return Err(config_error(
                        &key("provider"),
                        "`vault-transit` is not compiled in: enable the kms feature `vault`",
                    ));
                }
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
            Ok(Self {
                at: at.clone(),
                provider,
                policy,
                context,
            })
        }

        /// The layer over `provider`.
        pub(crate) fn layer(self, provider: Arc<dyn CryptoProvider>) -> EnvelopeLayer {
            EnvelopeLayer::new(provider)
                .context(self.context)
                .cache_policy(self.policy)
        }
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
}
