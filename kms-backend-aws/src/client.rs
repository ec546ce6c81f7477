//! [`SecretsClient`]: the leaf that sends Secrets Manager requests.
//!
//! One method per request, each taking full secret names (namespace included) and returning
//! its failure already mapped by [`error_map`](crate::error_map). What a `KeyStore` call
//! means in requests (put, else create, else restore; follow every page; the order of a
//! key's writes) is [`SecretsManagerStore`](crate::SecretsManagerStore)'s.

use std::time::SystemTime;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::SdkError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
use aws_sdk_secretsmanager::operation::list_secrets::ListSecretsOutput;
use aws_sdk_secretsmanager::primitives::{Blob, DateTime};
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};
use kms_core::{Error, ErrorKind, Result, SecretMeta, SecretValue, StoredSecret};

use crate::BACKEND;
use crate::deletion::Deletion;
use crate::error_map::{Call, Failure, Mapped, makes_one_attempt, to_error_and_condition};
use crate::version_stage::VersionStage;

/// Settings of secrets this store creates.
#[derive(Clone, Debug, Default)]
pub(crate) struct CreateOptions {
    pub(crate) kms_key_id: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) tags: Vec<(String, String)>,
}

/// Which version of a secret a `GetSecretValue` reads.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pick<'a> {
    /// The version carrying this staging label.
    Stage(&'a VersionStage),
    /// The version with this id.
    Version(&'a str),
}

/// The SDK client with the settings of the requests it sends: how secrets are created and
/// deleted, and how many names a `ListSecrets` page asks for.
#[derive(Clone, Debug)]
pub(crate) struct SecretsClient {
    sdk: Client,
    create: CreateOptions,
    deletion: Deletion,
    page_size: i32,
    /// The SDK client makes one attempt per call (its retries are off).
    one_attempt: bool,
}

impl SecretsClient {
    pub(crate) fn new(
        sdk: Client,
        create: CreateOptions,
        deletion: Deletion,
        page_size: i32,
    ) -> Self {
        let one_attempt = makes_one_attempt(sdk.config().retry_config());
        Self {
            sdk,
            create,
            deletion,
            page_size,
            one_attempt,
        }
    }

    /// Maps a failed request of this client (see [`error_map`](crate::error_map)).
    fn mapped<E, R>(&self, err: SdkError<E, R>, call: Call, what: &str) -> Mapped
    where
        Failure: From<SdkError<E, R>>,
    {
        to_error_and_condition(
            Failure::from(err).one_attempt(self.one_attempt),
            call,
            BACKEND,
            what,
        )
    }

    /// [`mapped`](Self::mapped), the error alone.
    fn error<E, R>(&self, err: SdkError<E, R>, call: Call, what: &str) -> Error
    where
        Failure: From<SdkError<E, R>>,
    {
        self.mapped(err, call, what).error
    }

    /// The SDK client.
    pub(crate) fn sdk(&self) -> &Client {
        &self.sdk
    }

    pub(crate) fn create_options(&self) -> &CreateOptions {
        &self.create
    }

    pub(crate) fn deletion(&self) -> Deletion {
        self.deletion
    }

    pub(crate) fn page_size(&self) -> i32 {
        self.page_size
    }

    /// `GetSecretValue` of the version `pick` names; the value is moved out of the answer.
    pub(crate) async fn get(&self, name: &str, pick: Pick<'_>) -> Result<StoredSecret> {
        let req = self.sdk.get_secret_value().secret_id(name);
        let (req, what) = match pick {
            Pick::Stage(stage) => (
                req.version_stage(stage.as_str()),
                format!("GetSecretValue {name} ({stage})"),
            ),
            Pick::Version(version) => (
                req.version_id(version),
                format!("GetSecretValue {name} (version {version})"),
            ),
        };
        let out = req
            .send()
            .await
            .map_err(|e| self.error(e, Call::Read, &what))?;
        stored(out, &what)
    }

    /// `PutSecretValue` with `token` as its `ClientRequestToken` (the new version's id).
    pub(crate) async fn put(
        &self,
        name: &str,
        value: &SecretValue,
        token: &str,
    ) -> std::result::Result<SecretMeta, Mapped> {
        self.put_with_stage(name, value, token, None).await
    }

    /// `PutSecretValue` of a version that carries only the staging label `stage`:
    /// `AWSCURRENT` stays where it is (a check-and-set moves it afterwards with
    /// [`move_stage`](Self::move_stage)).
    pub(crate) async fn put_staged(
        &self,
        name: &str,
        value: &SecretValue,
        token: &str,
        stage: &str,
    ) -> std::result::Result<SecretMeta, Mapped> {
        self.put_with_stage(name, value, token, Some(stage)).await
    }

    async fn put_with_stage(
        &self,
        name: &str,
        value: &SecretValue,
        token: &str,
        stage: Option<&str>,
    ) -> std::result::Result<SecretMeta, Mapped> {
        let req = self
            .sdk
            .put_secret_value()
            .secret_id(name)
            .client_request_token(token)
            .set_version_stages(stage.map(|s| vec![s.to_owned()]));
        let req = match secret_payload(value) {
            Payload::Text(s) => req.secret_string(s),
            Payload::Binary(b) => req.secret_binary(b),
        };
        let what = format!("PutSecretValue {name}");
        let out = req
            .send()
            .await
            .map_err(|e| self.mapped(e, Call::Write, &what))?;
        Ok(meta(out.version_id, None))
    }

    /// `CreateSecret` with `token` as the first version's `ClientRequestToken`, and the
    /// configured KMS key, description and tags.
    pub(crate) async fn create(
        &self,
        name: &str,
        value: &SecretValue,
        token: &str,
    ) -> std::result::Result<SecretMeta, Mapped> {
        let mut req = self
            .sdk
            .create_secret()
            .name(name)
            .client_request_token(token);
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
        let what = format!("CreateSecret {name}");
        let out = req
            .send()
            .await
            .map_err(|e| self.mapped(e, Call::Create, &what))?;
        Ok(meta(out.version_id, None))
    }

    /// `UpdateSecretVersionStage`: moves the staging label `stage` to the version
    /// `move_to` (none: only removes it) from the version `remove_from`. AWS applies it only
    /// if `remove_from` carries the label at that moment (else `InvalidParameterException`),
    /// which makes moving `AWSCURRENT` a compare-and-swap; moving `AWSCURRENT` moves
    /// `AWSPREVIOUS` to the version it left.
    pub(crate) async fn move_stage(
        &self,
        name: &str,
        stage: &str,
        move_to: Option<&str>,
        remove_from: Option<&str>,
    ) -> std::result::Result<(), Mapped> {
        let what = format!("UpdateSecretVersionStage {name} ({stage})");
        self.sdk
            .update_secret_version_stage()
            .secret_id(name)
            .version_stage(stage)
            .set_move_to_version_id(move_to.map(str::to_owned))
            .set_remove_from_version_id(remove_from.map(str::to_owned))
            .send()
            .await
            .map_err(|e| self.mapped(e, Call::Write, &what))?;
        Ok(())
    }

    /// `RestoreSecret`.
    pub(crate) async fn restore(&self, name: &str) -> Result<()> {
        let what = format!("RestoreSecret {name}");
        self.sdk
            .restore_secret()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| self.error(e, Call::Other, &what))?;
        Ok(())
    }

    /// `DeleteSecret` with the configured recovery window, or forced after a `DescribeSecret`.
    pub(crate) async fn delete(&self, name: &str) -> Result<()> {
        if self.deletion == Deletion::Force {
            // A forced DeleteSecret of a missing secret succeeds silently, so ask first. Only
            // a read so far: its failure proves nothing was deleted (a `NotFound` is left
            // unmarked: the secret is gone, so a value a cache above holds is not right).
            self.ensure_exists(name)
                .await
                .map_err(|e| if e.is_not_found() { e } else { e.not_applied() })?;
        }
        let req = self.sdk.delete_secret().secret_id(name);
        let req = match self.deletion {
            Deletion::RecoveryWindowDays(days) => req.recovery_window_in_days(i64::from(days)),
            Deletion::Force => req.force_delete_without_recovery(true),
        };
        let what = format!("DeleteSecret {name}");
        req.send()
            .await
            .map_err(|e| self.error(e, Call::Delete, &what))?;
        Ok(())
    }

    /// `DescribeSecret`, for the next rotation it publishes (see
    /// [`rotation_schedule`](crate::rotation_schedule)).
    pub(crate) async fn next_rotation(&self, name: &str) -> Result<Option<SystemTime>> {
        let what = format!("DescribeSecret {name}");
        let out = self
            .sdk
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| self.error(e, Call::Read, &what))?;
        Ok(crate::rotation_schedule::next_rotation(&out))
    }

    /// `NotFound` unless the secret exists and is not scheduled for deletion.
    async fn ensure_exists(&self, name: &str) -> Result<()> {
        let what = format!("DescribeSecret {name}");
        let out = self
            .sdk
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| self.error(e, Call::Delete, &what))?;
        if out.deleted_date().is_some() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("{what}: the secret is scheduled for deletion"),
            )
            .with_backend(BACKEND));
        }
        Ok(())
    }

    /// One `ListSecrets` page of names starting with `filter` (every name: `None`), secrets
    /// scheduled for deletion left out by the server; `what` names the listing in errors.
    pub(crate) async fn list_page(
        &self,
        filter: Option<&str>,
        next_token: Option<String>,
        what: &str,
    ) -> Result<ListSecretsOutput> {
        let mut req = self
            .sdk
            .list_secrets()
            .max_results(self.page_size)
            .include_planned_deletion(false)
            .set_next_token(next_token);
        if let Some(filter) = filter {
            req = req.filters(
                Filter::builder()
                    .key(FilterNameStringType::Name)
                    .values(filter)
                    .build(),
            );
        }
        req.send()
            .await
            .map_err(|e| self.error(e, Call::Other, what))
    }

    /// `ListSecrets` of one entry, the request a health check sends.
    pub(crate) async fn list_one(&self) -> Result<()> {
        self.sdk
            .list_secrets()
            .max_results(1)
            .send()
            .await
            .map_err(|e| self.error(e, Call::Other, "ListSecrets (health)"))?;
        Ok(())
    }
}

/// What a write that already landed under `token` returns: AWS uses the token as the version id.
pub(crate) fn landed(token: &str) -> SecretMeta {
    meta(Some(token.to_owned()), None)
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
fn stored(mut out: GetSecretValueOutput, what: &str) -> Result<StoredSecret> {
    let value = if let Some(text) = out.secret_string.take() {
        SecretValue::new(text.into_bytes())
    } else if let Some(blob) = out.secret_binary.take() {
        SecretValue::new(blob.into_inner())
    } else {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("{what}: answer has neither SecretString nor SecretBinary"),
        )
        .with_backend(BACKEND));
    };
    Ok(StoredSecret::with_meta(
        value,
        meta(out.version_id.take(), out.created_date.take()),
    ))
}
