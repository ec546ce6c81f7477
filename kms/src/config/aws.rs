//! `aws`: AWS Secrets Manager (`kms_backend_aws::SecretsManagerStore`) and the connection
//! settings every AWS client is made from (`kms_backend_aws::AwsConnection`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::secret_ref::SecretRef;
use crate::{duration, scalar};

/// Where and as whom to reach AWS: the connection half of [`AwsConfig`], also `envelope.aws`
/// (the connection AWS KMS uses when the store is not a Secrets Manager store). Unset options
/// come from the SDK's default chain (environment, profile, SSO, web identity, IMDS).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConnectionConfig {
    /// The region (`eu-west-1`).
    pub region: Option<String>,
    /// The shared-config profile to read region and credentials from.
    pub profile: Option<String>,
    /// Send requests here instead of the public endpoint (an emulator, a VPC endpoint).
    pub endpoint_url: Option<String>,
    /// Static credentials: the access key id (needs `secret_access_key`).
    pub access_key_id: Option<SecretRef>,
    /// Static credentials: the secret access key.
    pub secret_access_key: Option<SecretRef>,
    /// Static credentials: the session token (temporary credentials).
    pub session_token: Option<SecretRef>,
    /// Keep the SDK's own retries (default false: kms-core's retry layer is the one place).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub sdk_retries: Option<bool>,
    /// TCP/TLS connect timeout (SDK default 3.1 s).
    #[serde(default, deserialize_with = "duration::opt")]
    pub connect_timeout: Option<Duration>,
    /// A deadline for each whole operation, enforced by the SDK.
    #[serde(default, deserialize_with = "duration::opt")]
    pub operation_timeout: Option<Duration>,
}

/// `[stores.NAME.aws]` / `aws-sm://<region>/<namespace>`: AWS Secrets Manager. Maps onto
/// `kms_backend_aws::AwsConnection` and `kms_backend_aws::SecretsManagerStoreBuilder`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// See [`AwsConnectionConfig::region`].
    pub region: Option<String>,
    /// See [`AwsConnectionConfig::profile`].
    pub profile: Option<String>,
    /// See [`AwsConnectionConfig::endpoint_url`].
    pub endpoint_url: Option<String>,
    /// See [`AwsConnectionConfig::access_key_id`].
    pub access_key_id: Option<SecretRef>,
    /// See [`AwsConnectionConfig::secret_access_key`].
    pub secret_access_key: Option<SecretRef>,
    /// See [`AwsConnectionConfig::session_token`].
    pub session_token: Option<SecretRef>,
    /// See [`AwsConnectionConfig::sdk_retries`].
    #[serde(default, deserialize_with = "scalar::opt")]
    pub sdk_retries: Option<bool>,
    /// See [`AwsConnectionConfig::connect_timeout`].
    #[serde(default, deserialize_with = "duration::opt")]
    pub connect_timeout: Option<Duration>,
    /// See [`AwsConnectionConfig::operation_timeout`].
    #[serde(default, deserialize_with = "duration::opt")]
    pub operation_timeout: Option<Duration>,
    /// Keeps every secret under `<namespace>/`.
    pub namespace: Option<String>,
    /// The staging label `get` reads: `AWSCURRENT` (default), `AWSPREVIOUS`, `AWSPENDING` or
    /// a custom label.
    pub version_stage: Option<String>,
    /// The customer-managed KMS key secrets this store creates are encrypted with.
    pub kms_key_id: Option<String>,
    /// The description of secrets this store creates.
    pub description: Option<String>,
    /// Tags of secrets this store creates (`tags.owner = "payments"`).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// What `remove` does: `recovery_window` (default) or `force`.
    pub deletion: Option<AwsDeletion>,
    /// The recovery window of `deletion = "recovery_window"`, 7–30 days (default 30).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub recovery_window_days: Option<u8>,
    /// Restore a secret scheduled for deletion when it is stored again (default false).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub restore_deleted: Option<bool>,
    /// Names per `ListSecrets` page, 1–100 (default 100).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub list_page_size: Option<u8>,
    /// Report each secret's next rotation (`DescribeSecret`: `NextRotationDate`, or the
    /// rotation rules) so a cache never keeps a value past it (default false; one
    /// `DescribeSecret` per secret per version, at most one an hour otherwise).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub rotation_schedule: Option<bool>,
}

/// What `remove` does to a secret.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AwsDeletion {
    /// Schedule deletion after `recovery_window_days`.
    RecoveryWindow,
    /// Delete at once, without recovery.
    Force,
}

impl AwsConfig {
    /// The connection half.
    pub fn connection(&self) -> AwsConnectionConfig {
        AwsConnectionConfig {
            region: self.region.clone(),
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            session_token: self.session_token.clone(),
            sdk_retries: self.sdk_retries,
            connect_timeout: self.connect_timeout,
            operation_timeout: self.operation_timeout,
        }
    }
}

#[cfg(feature = "aws")]
pub(crate) use build::AwsPlan;
#[cfg(all(feature = "aws", feature = "envelope"))]
pub(crate) use build::build_sdk_config;

#[cfg(feature = "aws")]
mod build {
    use std::sync::Arc;

    use kms_backend_aws::sdk::aws_config::SdkConfig;
    use kms_backend_aws::{AwsConnection, Deletion, SecretsManagerStore, VersionStage};
    use kms_core::{KeyStore, Result};
    use secrecy::ExposeSecret;

    use super::{AwsConfig, AwsConnectionConfig, AwsDeletion};
    use crate::config::at::At;
    use crate::error::{config_error, while_applying};

    /// Resolves the connection into an `SdkConfig`; `base` is `aws` or `envelope.aws`.
    pub(crate) async fn build_sdk_config(
        c: &AwsConnectionConfig,
        at: &At,
        base: &str,
    ) -> Result<SdkConfig> {
        let key = |k: &str| at.key(&format!("{base}.{k}"));
        let mut conn = AwsConnection::new();
        if let Some(r) = &c.region {
            conn = conn.region(r.clone());
        }
        if let Some(p) = &c.profile {
            conn = conn.profile(p.clone());
        }
        if let Some(u) = &c.endpoint_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(config_error(
                    &key("endpoint_url"),
                    format_args!("invalid value {u:?}: expected an http:// or https:// URL"),
                ));
            }
            conn = conn.endpoint_url(u.clone());
        }
        match (&c.access_key_id, &c.secret_access_key) {
            (None, None) => {
                if c.session_token.is_some() {
                    return Err(config_error(
                        &key("session_token"),
                        "needs `access_key_id` and `secret_access_key`",
                    ));
                }
            }
            (Some(id), Some(secret)) => {
                let token = match &c.session_token {
                    Some(t) => Some(t.resolve(&key("session_token"))?),
                    None => None,
                };
                conn = conn.static_credentials(
                    id.resolve(&key("access_key_id"))?.expose_secret(),
                    secret.resolve(&key("secret_access_key"))?,
                    token,
                );
            }
            (Some(_), None) => {
                return Err(config_error(
                    &key("secret_access_key"),
                    "missing: `access_key_id` needs `secret_access_key`",
                ));
            }
            (None, Some(_)) => {
                return Err(config_error(
                    &key("access_key_id"),
                    "missing: `secret_access_key` needs `access_key_id`",
                ));
            }
        }
        if let Some(on) = c.sdk_retries {
            conn = conn.sdk_retries(on);
        }
        if let Some(t) = c.connect_timeout {
            conn = conn.connect_timeout(t);
        }
        if let Some(t) = c.operation_timeout {
            conn = conn.operation_timeout(t);
        }
        load(conn)
            .await
            .map_err(|e| while_applying(&key("region"), e))
    }

    /// `AwsConnection::load`: no region anywhere in the chain (or no Tokio runtime) is a
    /// `Configuration` error.
    async fn load(conn: AwsConnection) -> Result<SdkConfig> {
        conn.load().await
    }

    /// A Secrets Manager store's options, its own checked (so a typo never waits for the
    /// credential chain): the SDK configuration is loaded by [`connect`](Self::connect), the
    /// store over it made by [`store`](Self::store).
    pub(crate) struct AwsPlan {
        options: AwsConfig,
        at: At,
    }

    impl AwsPlan {
        /// Checks the store's own options.
        pub(crate) fn new(a: &AwsConfig, at: &At) -> Result<Self> {
            if a.deletion == Some(AwsDeletion::Force) && a.recovery_window_days.is_some() {
                return Err(config_error(
                    &at.key("aws.recovery_window_days"),
                    "not used with `deletion = \"force\"`",
                ));
            }
            if let Some(days) = a.recovery_window_days
                && !(7..=30).contains(&days)
            {
                return Err(config_error(
                    &at.key("aws.recovery_window_days"),
                    format_args!("recovery window of {days} days: AWS allows 7 to 30"),
                ));
            }
            if let Some(n) = a.list_page_size
                && !(1..=100).contains(&n)
            {
                return Err(config_error(
                    &at.key("aws.list_page_size"),
                    format_args!("list page size {n}: AWS allows 1 to 100"),
                ));
            }
            Ok(Self {
                options: a.clone(),
                at: at.clone(),
            })
        }

        /// Resolves the connection (the credential chain, the region).
        pub(crate) async fn connect(&self) -> Result<SdkConfig> {
            build_sdk_config(&self.options.connection(), &self.at, "aws").await
        }

        /// The Secrets Manager store over `sdk`.
        pub(crate) fn store(&self, sdk: &SdkConfig) -> Result<Arc<dyn KeyStore>> {
            let (a, at) = (&self.options, &self.at);
            let mut builder = SecretsManagerStore::builder(sdk);
            if let Some(ns) = &a.namespace {
                builder = builder
                    .namespace(ns)
                    .map_err(|e| while_applying(&at.key("aws.namespace"), e))?;
            }
            if let Some(stage) = &a.version_stage {
                builder = builder.version_stage(match stage.as_str() {
                "AWSCURRENT" => VersionStage::Current,
                "AWSPREVIOUS" => VersionStage::Previous,
                "AWSPENDING" => VersionStage::Pending,
                "" => return Err(config_error(&at.key("aws.version_stage"), "invalid value \"\": expected AWSCURRENT, AWSPREVIOUS, AWSPENDING or a custom label")),
                other => VersionStage::Custom(other.to_owned()),
            });
            }
            if let Some(k) = &a.kms_key_id {
                builder = builder.kms_key_id(k.clone());
            }
            if let Some(d) = &a.description {
                builder = builder.description(d.clone());
            }
            for (k, v) in &a.tags {
                builder = builder.tag(k.clone(), v.clone());
            }
            let deletion = match (a.deletion, a.recovery_window_days) {
                (Some(AwsDeletion::Force), Some(_)) => {
                    return Err(config_error(
                        &at.key("aws.recovery_window_days"),
                        "not used with `deletion = \"force\"`",
                    ));
                }
                (Some(AwsDeletion::Force), None) => Some(Deletion::Force),
                (_, Some(days)) => Some(Deletion::RecoveryWindowDays(days)),
                (Some(AwsDeletion::RecoveryWindow), None) => Some(Deletion::default()),
                (None, None) => None,
            };
            if let Some(d) = deletion {
                builder = builder
                    .deletion(d)
                    .map_err(|e| while_applying(&at.key("aws.recovery_window_days"), e))?;
            }
            if let Some(on) = a.restore_deleted {
                builder = builder.restore_deleted(on);
            }
            if let Some(on) = a.rotation_schedule {
                builder = builder.rotation_schedule(on);
            }
            if let Some(n) = a.list_page_size {
                builder = builder
                    .list_page_size(n)
                    .map_err(|e| while_applying(&at.key("aws.list_page_size"), e))?;
            }
            let store = builder
                .build()
                .map_err(|e| while_applying(&at.key("aws"), e))?;
            Ok(Arc::new(store))
        }
    }
}
