//! [`SecretsManagerStore`]: a [`KeyStore`] over AWS Secrets Manager.

use std::fmt;
use std::time::SystemTime;

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
use aws_sdk_secretsmanager::primitives::{Blob, DateTime};
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};
use kms_core::{
    Capabilities, Error, ErrorKind, KeyName, KeyPrefix, KeyStore, Result, SecretMeta, SecretValue,
    StoredSecret, async_trait,
};

use crate::error_map::{Call, Failure, SECRETS_MANAGER, to_error};
use crate::namespace::Namespace;
use crate::secrets_manager_builder::{CreateOptions, Deletion, SecretsManagerStoreBuilder};
use crate::version_stage::VersionStage;

/// A [`KeyStore`] over AWS Secrets Manager: one secret per key, named `<namespace>/<key>`.
///
/// | `KeyStore` | Secrets Manager |
/// |---|---|
/// | `get` | `GetSecretValue` of the configured stage (`AWSCURRENT` by default); version id and version creation date as metadata |
/// | `get_version` | `GetSecretValue` by version id |
/// | `store` | `PutSecretValue`; `CreateSecret` (with the configured KMS key, description, tags) when the secret does not exist |
/// | `remove` | `DeleteSecret` with the configured recovery window, or forced (after a `DescribeSecret`: AWS force-deletes a missing secret without complaint) |
/// | `list` | `ListSecrets` filtered by name prefix on the server, every page followed |
/// | `health` | `ListSecrets` of one entry |
///
/// Values that are valid UTF-8 are stored as `SecretString` (readable by every other AWS
/// tool), others as `SecretBinary`; both read back byte for byte. Secrets Manager keeps
/// versions (`capabilities().versions`), and rotation moves `AWSPREVIOUS` to the version
/// before: read it with [`get_stage`](Self::get_stage).
///
/// The value read is moved, not copied, from the SDK's answer into a zeroizing
/// [`SecretValue`]. Outside this crate's reach: the SDK's HTTP buffers (the JSON request and
/// response bodies) are freed without being zeroized, as in every AWS SDK.
#[derive(Clone)]
pub struct SecretsManagerStore {
    client: Client,
    namespace: Namespace,
    stage: VersionStage,
    create: CreateOptions,
    deletion: Deletion,
    restore_deleted: bool,
    page_size: i32,
}

impl SecretsManagerStore {
    /// A builder over a client made from `config` (see
    /// [`AwsConnection`](crate::AwsConnection)).
    pub fn builder(config: &SdkConfig) -> SecretsManagerStoreBuilder {
        SecretsManagerStoreBuilder::from_config(config)
    }

    /// A builder over a client the service already has.
    pub fn builder_from_client(client: Client) -> SecretsManagerStoreBuilder {
        SecretsManagerStoreBuilder::new(client)
    }

    pub(crate) fn from_builder(b: SecretsManagerStoreBuilder) -> Self {
        Self {
            client: b.client,
            namespace: b.namespace,
            stage: b.stage,
            create: b.create,
            deletion: b.deletion,
            restore_deleted: b.restore_deleted,
            page_size: b.page_size,
        }
    }

    /// The SDK client, for calls this store does not make (rotation setup, policies).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Reads the version of `key` that carries `stage`: [`VersionStage::Previous`] during a
    /// rotation's grace period.
    pub async fn get_stage(&self, key: &KeyName, stage: &VersionStage) -> Result<StoredSecret> {
        let name = self.namespace.secret_name(key)?;
        let out = self
            .client
            .get_secret_value()
            .secret_id(&name)
            .version_stage(stage.as_str())
            .send()
            .await
            .map_err(sm_error(
                Call::Read,
                format!("GetSecretValue {key} ({stage})"),
            ))?;
        stored(out, key)
    }

    async fn put(&self, name: &str, key: &KeyName, value: &SecretValue) -> Result<SecretMeta> {
        let req = self.client.put_secret_value().secret_id(name);
        let req = match secret_payload(value) {
            Payload::Text(s) => req.secret_string(s),
            Payload::Binary(b) => req.secret_binary(b),
        };
        let out = req
            .send()
            .await
            .map_err(sm_error(Call::Write, format!("PutSecretValue {key}")))?;
        Ok(meta(out.version_id, None))
    }

    async fn create(&self, name: &str, key: &KeyName, value: &SecretValue) -> Result<SecretMeta> {
        let mut req = self.client.create_secret().name(name);
        req = match secret_payload(value) {
            Payload::Text(s) => req.secret_string(s),
            Payload::Binary(b) => req.secret_binary(b),
        };
        if let Some(kms) = &self.create.kms_key_id {
            req = req.kms_key_id(kms);
        }
        if let Some(d) = &self.create.description {
            req = req.description(d);
        }
        for (k, v) in &self.create.tags {
            req = req.tags(Tag::builder().key(k).value(v).build());
        }
        let out = req
            .send()
            .await
            .map_err(sm_error(Call::Write, format!("CreateSecret {key}")))?;
        Ok(meta(out.version_id, None))
    }

    /// `NotFound` unless the secret exists and is not scheduled for deletion.
    async fn ensure_exists(&self, name: &str, key: &KeyName) -> Result<()> {
        let out = self
            .client
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .map_err(sm_error(Call::Delete, format!("DescribeSecret {key}")))?;
        if out.deleted_date().is_some() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("key '{key}' is scheduled for deletion"),
            )
            .with_backend(SECRETS_MANAGER));
        }
        Ok(())
    }

    async fn restore(&self, name: &str, key: &KeyName) -> Result<()> {
        self.client
            .restore_secret()
            .secret_id(name)
            .send()
            .await
            .map_err(sm_error(Call::Other, format!("RestoreSecret {key}")))?;
        Ok(())
    }
}

/// Maps a failed call of this store; `what` names the request and the key.
fn sm_error<F: Into<Failure>>(call: Call, what: String) -> impl FnOnce(F) -> Error {
    move |failure| to_error(failure.into(), call, SECRETS_MANAGER, &what)
}

/// What goes over the wire: text when the bytes are UTF-8, binary otherwise.
enum Payload {
    Text(String),
    Binary(Blob),
}

/// The SDK takes owned buffers; they are freed (not zeroized) after the request is sent.
fn secret_payload(value: &SecretValue) -> Payload {
    match std::str::from_utf8(value.expose_secret()) {
        Ok(text) => Payload::Text(text.to_owned()),
        Err(_) => Payload::Binary(Blob::new(value.expose_secret().to_vec())),
    }
}

fn system_time(at: Option<DateTime>) -> Option<SystemTime> {
    at.and_then(|d| SystemTime::try_from(d).ok())
}

fn meta(version: Option<String>, created: Option<DateTime>) -> SecretMeta {
    let mut meta = SecretMeta::default();
    meta.version = version.map(Into::into);
    if let Some(at) = system_time(created) {
        meta = meta.created_at(at).updated_at(at);
    }
    meta
}

/// Moves the value out of the SDK's answer into a zeroizing [`SecretValue`].
fn stored(mut out: GetSecretValueOutput, key: &KeyName) -> Result<StoredSecret> {
    let value = if let Some(text) = out.secret_string.take() {
        SecretValue::new(text.into_bytes())
    } else if let Some(blob) = out.secret_binary.take() {
        SecretValue::new(blob.into_inner())
    } else {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("GetSecretValue {key}: answer has neither SecretString nor SecretBinary"),
        )
        .with_backend(SECRETS_MANAGER));
    };
    Ok(StoredSecret::with_meta(
        value,
        meta(out.version_id.take(), out.created_date.take()),
    ))
}

#[async_trait]
impl KeyStore for SecretsManagerStore {
    fn backend(&self) -> &'static str {
        SECRETS_MANAGER
    }

    fn capabilities(&self) -> Capabilities {
        // 64 KiB: Secrets Manager's limit for SecretString and SecretBinary alike.
        Capabilities::new()
            .with_list(true)
            .with_versions(true)
            .with_max_value_len(65_536)
    }

    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        self.get_stage(key, &self.stage).await
    }

    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        let name = self.namespace.secret_name(key)?;
        let out = self
            .client
            .get_secret_value()
            .secret_id(&name)
            .version_id(version)
            .send()
            .await
            .map_err(sm_error(
                Call::Read,
                format!("GetSecretValue {key} (version {version})"),
            ))?;
        stored(out, key)
    }

    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        self.capabilities().check_value(&value)?;
        let name = self.namespace.secret_name(key)?;
        match self.put(&name, key, &value).await {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                match self.create(&name, key, &value).await {
                    // Created by someone else between our put and create: put again.
                    Err(e) if e.kind() == ErrorKind::Conflict => self.put(&name, key, &value).await,
                    other => other,
                }
            }
            Err(e) if e.kind() == ErrorKind::Conflict && self.restore_deleted => {
                self.restore(&name, key).await?;
                self.put(&name, key, &value).await
            }
            other => other,
        }
    }

    async fn remove(&self, key: &KeyName) -> Result<()> {
        let name = self.namespace.secret_name(key)?;
        if self.deletion == Deletion::Force {
            // A forced DeleteSecret of a missing secret succeeds silently, so ask first.
            self.ensure_exists(&name, key).await?;
        }
        let req = self.client.delete_secret().secret_id(&name);
        let req = match self.deletion {
            Deletion::RecoveryWindowDays(days) => req.recovery_window_in_days(i64::from(days)),
            Deletion::Force => req.force_delete_without_recovery(true),
        };
        req.send()
            .await
            .map_err(sm_error(Call::Delete, format!("DeleteSecret {key}")))?;
        Ok(())
    }

    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        let mut req = self
            .client
            .list_secrets()
            .max_results(self.page_size)
            .include_planned_deletion(false);
        if let Some(filter) = self.namespace.filter(prefix) {
            req = req.filters(
                Filter::builder()
                    .key(FilterNameStringType::Name)
                    .values(filter)
                    .build(),
            );
        }
        let mut pages = req.into_paginator().send();
        let mut names = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(sm_error(Call::Other, format!("ListSecrets {prefix}")))?;
            for entry in page.secret_list() {
                // Secrets scheduled for deletion are removed keys (older emulators list them).
                if entry.deleted_date().is_some() {
                    continue;
                }
                if let Some(name) = entry.name().and_then(|n| self.namespace.key_of(n, prefix)) {
                    names.push(name);
                }
            }
        }
        Ok(names)
    }

    /// `ListSecrets` of one entry: proves the endpoint answers and the credentials are
    /// accepted. An `AccessDenied` answer proves both too (the request was authenticated),
    /// so a role allowed only `GetSecretValue` on its own secrets is healthy.
    async fn health(&self) -> Result<()> {
        match self.client.list_secrets().max_results(1).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = to_error(
                    e.into(),
                    Call::Other,
                    SECRETS_MANAGER,
                    "ListSecrets (health)",
                );
                if err.kind() == ErrorKind::PermissionDenied {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }
}

impl fmt::Display for SecretsManagerStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.namespace.as_str() {
            Some(ns) => write!(f, "SecretsManager({ns})"),
            None => f.write_str("SecretsManager"),
        }
    }
}

impl fmt::Debug for SecretsManagerStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsManagerStore")
            .field("namespace", &self.namespace.as_str())
            .field("stage", &self.stage)
            .field("create", &self.create)
            .field("deletion", &self.deletion)
            .field("restore_deleted", &self.restore_deleted)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}
