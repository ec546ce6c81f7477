//! [`SecretsManagerStore`]: a [`KeyStore`] over AWS Secrets Manager.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use aws_sdk_secretsmanager::Client;
use kms_core::{
    Capabilities, Error, ErrorKind, KeyName, KeyPrefix, KeyStore, PreviousVersion, Result,
    SecretMeta, SecretValue, StoredSecret, WriteOrder, async_trait,
};

use crate::BACKEND;
use crate::client::{Pick, SecretsClient, landed};
use crate::error_map::{Condition, Mapped};
use crate::namespace::Namespace;
use crate::repeat_attempt::RunningWrites;
use crate::rotation_schedule::ScheduleMemo;
use crate::version_stage::VersionStage;
use crate::{request_token, runtime};
use kms_core::one_line;

/// The staging label a [`store_if_version`](KeyStore::store_if_version) puts on the version
/// it writes until it moves `AWSCURRENT` there: not `AWSPENDING`, which belongs to a rotation
/// Lambda's four steps. A version that lost the race keeps no label (AWS counts it as
/// deprecated and deletes it in time); if the write is interrupted between its calls, the
/// label stays on a version that never became current, and the next check-and-set of the
/// key moves it.
pub const CAS_STAGE: &str = "KMSPENDING";

/// A [`KeyStore`] over AWS Secrets Manager: one secret per key, named `<namespace>/<key>`.
///
/// | `KeyStore` | Secrets Manager |
/// |---|---|
/// | `get` | `GetSecretValue` of the configured stage (`AWSCURRENT` by default); version id and version creation date as metadata |
/// | `get_version` | `GetSecretValue` by version id, or by staging label for `AWSCURRENT`, `AWSPREVIOUS` and `AWSPENDING` (so [`Overlap`](kms_core::rotation::Overlap) reads `AWSPREVIOUS`) |
/// | `store_if_version` | a check-and-set in three calls: `PutSecretValue` of a version staged only as [`CAS_STAGE`]; `UpdateSecretVersionStage` moving `AWSCURRENT` to it *from the expected version*, which AWS refuses (`InvalidParameterException`, answered as [`ErrorKind::Conflict`]) when `AWSCURRENT` is on another version by then; `UpdateSecretVersionStage` taking [`CAS_STAGE`] off. `None` (only if absent) is a `CreateSecret`, a `Conflict` if the secret exists |
/// | `store` | `PutSecretValue`; `CreateSecret` (with the configured KMS key, description, tags) when the secret does not exist; one `ClientRequestToken` for every request of one logical write |
/// | `remove` | `DeleteSecret` with the configured recovery window, or forced (after a `DescribeSecret`: AWS force-deletes a missing secret without complaint) |
/// | `list` | `ListSecrets` filtered by name prefix on the server, every page followed; a repeated `NextToken` is [`ErrorKind::InvalidData`], a name on two pages listed once |
/// | `health` | `ListSecrets` of one entry |
///
/// **One logical write is one version.** Every request of one `store` carries the same
/// `ClientRequestToken`: the id of the [`CallContext`](kms_core::CallContext) that
/// kms-core's retry layer opens around all attempts of the call, or a fresh one per call
/// without it. A retried attempt of a write that landed but answered too late (after the
/// [`TimeoutLayer`](kms_core::TimeoutLayer) deadline) is recognised by AWS and makes no second
/// version; `AWSPREVIOUS` stays on the version before, and the call returns the landed version.
///
/// Every call needs a Tokio runtime (the SDK's HTTP client and timers); outside one it
/// returns [`ErrorKind::Configuration`] instead of panicking. Messages name the full secret
/// name (`<namespace>/<key>`).
///
/// Values that are valid UTF-8 are stored as `SecretString` (readable by every other AWS
/// tool), others as `SecretBinary`; both read back byte for byte. Secrets Manager keeps
/// versions (`capabilities().versions`), and rotation moves `AWSPREVIOUS` to the version
/// before: read it with [`get_stage`](Self::get_stage).
///
/// **Writes to one key apply in the order they were issued**, even when their callers give up.
/// Every `store` and `remove` runs through a [`WriteOrder`] shared by the store and its
/// clones: it waits for the key's earlier write, then runs on its own task to the end. A
/// write whose caller dropped it after its request was sent (a timeout above, a `select!`)
/// would otherwise still be applied by AWS *after* the caller's next write to the key and
/// silently undo it. A retried attempt of a `store` or `remove` still in flight (same
/// [`CallContext`](kms_core::CallContext)) does not wait for it: a `store`'s
/// repeat carries the same `ClientRequestToken`, so AWS applies the two at most once, and a
/// second delete ends where one does; it is sent at once, and the key's next write waits for
/// both. Writes to different keys do not wait
/// for each other; two stores built separately do not order each other's writes.
///
/// The value read is moved, not copied, from the SDK's answer into a zeroizing
/// [`SecretValue`]. Outside this crate's reach: the SDK's HTTP buffers (the JSON request and
/// response bodies) are freed without being zeroized, as in every AWS SDK.
#[derive(Clone)]
pub struct SecretsManagerStore {
    client: SecretsClient,
    namespace: Namespace,
    stage: VersionStage,
    restore_deleted: bool,
    order: Arc<WriteOrder>,
    running: Arc<RunningWrites>,
    /// With [`rotation_schedule`](crate::SecretsManagerStoreBuilder::rotation_schedule) on:
    /// the last description of each secret read.
    schedule: Option<Arc<ScheduleMemo>>,
}

impl SecretsManagerStore {
    /// The store over `client`, with a write order of its own (shared by its clones): what
    /// the builder's `build` makes.
    pub(crate) fn new(
        client: SecretsClient,
        namespace: Namespace,
        stage: VersionStage,
        restore_deleted: bool,
        rotation_schedule: bool,
    ) -> Self {
        Self {
            client,
            namespace,
            stage,
            restore_deleted,
            order: Arc::new(WriteOrder::new()),
            running: Arc::default(),
            schedule: rotation_schedule.then(Arc::default),
        }
    }

    /// How many keys have a `store` or `remove` running or waiting, counting writes whose
    /// callers dropped them (they run to the end): 0 when every write sent has finished, e.g.
    /// before a graceful shutdown.
    pub fn writes_in_flight(&self) -> usize {
        self.order.in_flight()
    }

    /// The SDK client, for calls this store does not make (rotation setup, policies).
    pub fn client(&self) -> &Client {
        self.client.sdk()
    }

    /// Reads the version of `key` that carries `stage`: [`VersionStage::Previous`] during a
    /// rotation's grace period.
    ///
    /// Errors as [`get`](KeyStore::get); a stage no version carries is
    /// [`ErrorKind::NotFound`].
    pub async fn get_stage(&self, key: &KeyName, stage: &VersionStage) -> Result<StoredSecret> {
        let name = self.namespace.secret_name(key)?;
        runtime::require(BACKEND, "GetSecretValue")?;
        self.client.get(&name, Pick::Stage(stage)).await
    }

    /// `RestoreSecret`, for a `store`. A secret that is gone by now (a forced deletion still
    /// under way when the write began) is a [`ErrorKind::Conflict`], not `NotFound`: a
    /// `store` never says the key does not exist.
    async fn restore(&self, name: &str) -> Result<()> {
        match self.client.restore(name).await {
            Err(err) if err.kind() == ErrorKind::NotFound => {
                let mut conflict = Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "RestoreSecret {name}: the secret was deleted while this write restored \
                         it (a forced deletion still under way); write again once it is gone"
                    ),
                )
                .with_backend(BACKEND);
                if let Some(code) = err.code() {
                    conflict = conflict.with_code(code.to_owned());
                }
                Err(conflict)
            }
            other => other,
        }
    }

    /// Put, or create when missing, or restore first when scheduled for deletion and
    /// `restore_deleted` is on. Every request carries `token`, so AWS applies this logical
    /// write at most once however often it is sent; an answer that the token is already a
    /// version means an earlier attempt of this write landed, and that version is the result.
    async fn write(&self, name: &str, value: &SecretValue, token: &str) -> Result<SecretMeta> {
        match self.client.put(name, value, token).await {
            Ok(meta) => Ok(meta),
            Err(m) if m.condition == Some(Condition::TokenInUse) => Ok(landed(token)),
            Err(m) if m.error.kind() == ErrorKind::NotFound => {
                match self.client.create(name, value, token).await {
                    Ok(meta) => Ok(meta),
                    Err(m) if m.condition == Some(Condition::TokenInUse) => Ok(landed(token)),
                    // Created by someone else between our put and create: put again.
                    Err(m) if m.error.code() == Some("ResourceExistsException") => {
                        self.put_again(name, value, token).await
                    }
                    Err(m) if self.restores(&m) => {
                        self.restore(name).await?;
                        self.put_again(name, value, token)
                            .await
                            .map_err(after_restore)
                    }
                    Err(m) => Err(m.error),
                }
            }
            Err(m) if self.restores(&m) => {
                self.restore(name).await?;
                self.put_again(name, value, token)
                    .await
                    .map_err(after_restore)
            }
            Err(m) => Err(m.error),
        }
    }

    /// A put after a create race or a restore.
    async fn put_again(&self, name: &str, value: &SecretValue, token: &str) -> Result<SecretMeta> {
        match self.client.put(name, value, token).await {
            Err(m) if m.condition == Some(Condition::TokenInUse) => Ok(landed(token)),
            other => other.map_err(Error::from),
        }
    }

    /// A check-and-set write (see the type docs): create when `expected` is `None`, else
    /// stage a version and move `AWSCURRENT` to it from `expected`.
    async fn write_if(
        &self,
        name: &str,
        value: &SecretValue,
        token: &str,
        expected: Option<&str>,
    ) -> Result<SecretMeta> {
        let Some(expected) = expected else {
            return match self.client.create(name, value, token).await {
                Ok(meta) => Ok(meta),
                Err(m) if m.condition == Some(Condition::TokenInUse) => Ok(landed(token)),
                Err(m)
                    if m.error.code() == Some("ResourceExistsException")
                        || m.condition == Some(Condition::ScheduledForDeletion) =>
                {
                    Err(cas_conflict(name, "none (no such secret)", m.error))
                }
                Err(m) => Err(m.error),
            };
        };
        let staged = match self.client.put_staged(name, value, token, CAS_STAGE).await {
            Ok(meta) => meta,
            Err(m) if m.condition == Some(Condition::TokenInUse) => landed(token),
            Err(m) if m.error.kind() == ErrorKind::NotFound => {
                return Err(cas_conflict(name, expected, m.error));
            }
            Err(m) => return Err(m.error),
        };
        let version = staged.version.as_deref().unwrap_or(token).to_owned();
        let moved = self
            .client
            .move_stage(name, "AWSCURRENT", Some(&version), Some(expected))
            .await;
        // The label has done its work either way; a failure to take it off leaves it on a
        // version the next check-and-set moves it from.
        let _ = self
            .client
            .move_stage(name, CAS_STAGE, None, Some(&version))
            .await;
        match moved {
            Ok(()) => Ok(staged),
            Err(m) if m.error.code() == Some("InvalidParameterException") => {
                Err(cas_conflict(name, expected, m.error))
            }
            Err(m) => Err(m.error),
        }
    }

    /// The next rotation of the secret `name`, read at `meta`'s version: remembered, or
    /// described (see [`rotation_schedule`](crate::rotation_schedule)). A failed description
    /// is remembered as no date and never fails the read.
    async fn next_rotation(
        &self,
        memo: &ScheduleMemo,
        name: &str,
        meta: &SecretMeta,
    ) -> Option<std::time::SystemTime> {
        let version = meta.version.clone()?;
        let now = std::time::Instant::now();
        if let Some(known) = memo.lookup(name, &version, now) {
            return known;
        }
        let at = match self.client.next_rotation(name).await {
            Ok(at) => at,
            Err(err) => {
                tracing::debug!(
                    backend = BACKEND,
                    error_kind = err.kind().as_str(),
                    "DescribeSecret failed; the value is returned without its next rotation: {err}"
                );
                None
            }
        };
        memo.remember(name, version, now, at);
        at
    }

    fn restores(&self, m: &Mapped) -> bool {
        self.restore_deleted && m.condition == Some(Condition::ScheduledForDeletion)
    }
}

/// The [`ErrorKind::Conflict`] of a check-and-set that found another current version.
fn cas_conflict(name: &str, expected: &str, source: Error) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!(
            "check-and-set on {name}: the current version (AWSCURRENT) is not {expected}; \
             nothing was made current"
        ),
    )
    .with_backend(BACKEND)
    .with_source(source)
}

/// The staging label `version` names, if it is one of AWS's own (version ids are 32 to 64
/// characters, so they never look like these).
fn aws_stage(version: &str) -> Option<VersionStage> {
    match version {
        "AWSCURRENT" => Some(VersionStage::Current),
        "AWSPREVIOUS" => Some(VersionStage::Previous),
        "AWSPENDING" => Some(VersionStage::Pending),
        _ => None,
    }
}

/// `err` with every copy of `value`'s text in its message replaced by `…`: a server may
/// echo the request in its answer in words [`error_map`](crate::error_map) does not know.
/// The kind, code, backend and the exhausted, never-reached-backend and not-applied marks
/// are kept.
fn without_value(err: Error, value: &SecretValue) -> Error {
    let Ok(text) = std::str::from_utf8(value.expose_secret()) else {
        return err;
    };
    if text.is_empty() || !err.message().contains(text) {
        return err;
    }
    let mut clean = Error::new(err.kind(), err.message().replace(text, "…"));
    if let Some(backend) = err.backend() {
        clean = clean.with_backend(backend);
    }
    if let Some(code) = err.code() {
        clean = clean.with_code(code.to_owned());
    }
    if err.is_exhausted() {
        clean = clean.exhausted();
    }
    if err.never_reached_backend() {
        clean = clean.before_backend();
    }
    if err.proves_not_applied() {
        clean = clean.not_applied();
    }
    clean
}

/// `err`, a failure after this write restored the secret (a change), without the mark that
/// says the write changed nothing. Kind, message, code, backend and the exhausted mark are
/// kept; `err` itself becomes the source.
fn after_restore(err: Error) -> Error {
    let refusal = Error::new(err.kind(), "").proves_not_applied();
    if refusal || !err.proves_not_applied() {
        // A refusal kind says so on its own; an unmarked error has nothing to take off.
        return err;
    }
    let mut out =
        Error::new(err.kind(), err.message()).with_backend(err.backend().unwrap_or(BACKEND));
    if let Some(code) = err.code() {
        out = out.with_code(code.to_owned());
    }
    if err.is_exhausted() {
        out = out.exhausted();
    }
    out.with_source(err)
}

/// The error for a write whose task did not finish (the same words as `WriteOrder`'s).
fn task_failed(e: &tokio::task::JoinError) -> Error {
    Error::new(
        ErrorKind::Backend,
        if e.is_panic() {
            "the write panicked; nothing is known about whether it landed"
        } else {
            "the write's task was cancelled (runtime shutting down)"
        },
    )
    .with_backend(BACKEND)
}

#[async_trait]
impl KeyStore for SecretsManagerStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        // 64 KiB: Secrets Manager's limit for SecretString and SecretBinary alike.
        Capabilities::new()
            .with_list(true)
            .with_versions(true)
            .with_max_value_len(65_536)
            .with_previous_version(PreviousVersion::Label("AWSPREVIOUS"))
    }

    /// `GetSecretValue` of the configured stage; with
    /// [`rotation_schedule`](crate::SecretsManagerStoreBuilder::rotation_schedule) on, the
    /// next rotation too (see there for what it costs).
    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        let mut secret = self.get_stage(key, &self.stage).await?;
        if let Some(memo) = &self.schedule {
            let name = self.namespace.secret_name(key)?;
            if let Some(at) = self.next_rotation(memo, &name, &secret.meta).await {
                secret.meta = secret.meta.next_rotation(at);
            }
        }
        Ok(secret)
    }

    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        let name = self.namespace.secret_name(key)?;
        runtime::require(BACKEND, "GetSecretValue")?;
        match aws_stage(version) {
            Some(stage) => self.client.get(&name, Pick::Stage(&stage)).await,
            None => self.client.get(&name, Pick::Version(version)).await,
        }
    }

    /// A check-and-set in `PutSecretValue` + `UpdateSecretVersionStage` (see the type docs),
    /// through the store's [`WriteOrder`] like [`store`](KeyStore::store). Each call is its
    /// own logical write (a retry layer never repeats a check-and-set).
    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> Result<SecretMeta> {
        self.capabilities().check_value(&value)?;
        let name = self.namespace.secret_name(key)?;
        runtime::require(BACKEND, "PutSecretValue")?;
        let token = request_token::for_this_write();
        let expected = expected.map(str::to_owned);
        let this = self.clone();
        self.order
            .run(key, async move {
                this.write_if(&name, &value, &token, expected.as_deref())
                    .await
                    .map_err(|e| without_value(e, &value))
            })
            .await
    }

    /// Put, or create when missing; every request of one logical write carries the same
    /// `ClientRequestToken` (see the type docs). Runs through the store's [`WriteOrder`]: it
    /// finishes even if this future is dropped, before the key's next write starts.
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        self.capabilities().check_value(&value)?;
        let name = self.namespace.secret_name(key)?;
        runtime::require(BACKEND, "PutSecretValue")?;
        // The CallContext is task-local: read its id here, on the caller's task, before
        // the write moves to its own task.
        let token = request_token::for_this_write();
        // Only a store joins a store: a remove in the same CallContext is another write.
        let running_as = format!("store {token}");
        let this = self.clone();
        if let Some(pass) = self.running.join(key, &running_as) {
            // A retry of the write still in flight: same token, applied at most once, so
            // it goes out now; the running write holds the key until this one is done.
            let repeat = tokio::spawn(async move {
                let result =
                    (this.write(&name, &value, &token).await).map_err(|e| without_value(e, &value));
                drop(pass);
                result
            });
            return repeat.await.unwrap_or_else(|e| Err(task_failed(&e)));
        }
        let key_owned = key.clone();
        self.order
            .run(key, async move {
                let write = this.write(&name, &value, &token);
                let result = this.running.lead(&key_owned, &running_as, write).await;
                result.map_err(|e| without_value(e, &value))
            })
            .await
    }

    /// `DeleteSecret`; through the store's [`WriteOrder`] as [`store`](KeyStore::store).
    async fn remove(&self, key: &KeyName) -> Result<()> {
        let name = self.namespace.secret_name(key)?;
        runtime::require(BACKEND, "DeleteSecret")?;
        // The id of this logical remove (every attempt of the retry layer shares it).
        let id = format!("remove {}", request_token::for_this_write());
        let this = self.clone();
        if let Some(pass) = self.running.join(key, &id) {
            // A retry of the remove still in flight: deleting twice ends where deleting once
            // does (the retry layer reads a NotFound after a timeout as done), so it goes out
            // now; the running remove holds the key until this one is done.
            let repeat = tokio::spawn(async move {
                let result = this.client.delete(&name).await;
                drop(pass);
                result
            });
            return repeat.await.unwrap_or_else(|e| Err(task_failed(&e)));
        }
        let key_owned = key.clone();
        self.order
            .run(key, async move {
                let delete = this.client.delete(&name);
                this.running.lead(&key_owned, &id, delete).await
            })
            .await
    }

    /// Follows `NextToken` to the last page. A token the server already sent is
    /// [`ErrorKind::InvalidData`] (a server that cycles pages would otherwise be asked forever);
    /// a name on two pages is listed once.
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        runtime::require(BACKEND, "ListSecrets")?;
        let filter = self.namespace.filter(prefix);
        let what = match &filter {
            Some(f) => format!("ListSecrets {f}*"),
            None => "ListSecrets".to_owned(),
        };
        let mut tokens_seen = HashSet::new();
        let mut names = Vec::new();
        let mut names_seen = HashSet::new();
        let mut next_token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_page(filter.as_deref(), next_token.take(), &what)
                .await?;
            for entry in page.secret_list() {
                // Secrets scheduled for deletion are removed keys (older emulators list them).
                if entry.deleted_date().is_some() {
                    continue;
                }
                if let Some(name) = entry.name().and_then(|n| self.namespace.key_of(n, prefix))
                    && names_seen.insert(name.clone())
                {
                    names.push(name);
                }
            }
            match page.next_token {
                Some(token) if !token.is_empty() => {
                    if !tokens_seen.insert(token.clone()) {
                        return Err(Error::new(
                            ErrorKind::InvalidData,
                            format!(
                                "{what}: the server sent NextToken {} again after {} pages \
                                 (its pages cycle); listing stopped",
                                shorten(&token),
                                tokens_seen.len() + 1
                            ),
                        )
                        .with_backend(BACKEND));
                    }
                    next_token = Some(token);
                }
                _ => return Ok(names),
            }
        }
    }

    /// `ListSecrets` of one entry: proves the endpoint answers and the credentials are
    /// accepted. An `AccessDenied` answer proves both too (the request was authenticated),
    /// so a role allowed only `GetSecretValue` on its own secrets is healthy.
    async fn health(&self) -> Result<()> {
        runtime::require(BACKEND, "ListSecrets")?;
        match self.client.list_one().await {
            Err(err) if err.kind() == ErrorKind::PermissionDenied => Ok(()),
            other => other,
        }
    }
}

/// The first characters of a page token, for an error message (tokens are opaque and long,
/// and come from the server: on one line).
fn shorten(token: &str) -> String {
    let token = one_line(token);
    match token.char_indices().nth(16) {
        Some((end, _)) => format!("{}…", &token[..end]),
        None => token,
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
            .field("create", self.client.create_options())
            .field("deletion", &self.client.deletion())
            .field("restore_deleted", &self.restore_deleted)
            .field("page_size", &self.client.page_size())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taking_the_value_out_keeps_the_marks() {
        let value = SecretValue::from("hunter2");
        let refused = Error::new(ErrorKind::Unavailable, "refused hunter2")
            .with_backend(BACKEND)
            .not_applied();
        let clean = without_value(refused, &value);
        assert_eq!(clean.message(), "refused …");
        assert!(clean.proves_not_applied(), "{clean:?}");
        let unsent = Error::new(ErrorKind::Timeout, "hunter2").before_backend();
        assert!(without_value(unsent, &value).never_reached_backend());
        let unknown = Error::new(ErrorKind::Unavailable, "lost hunter2");
        assert!(!without_value(unknown, &value).proves_not_applied());
    }

    #[test]
    fn after_a_restore_a_failed_put_proves_nothing() {
        let refused = Error::new(ErrorKind::Unavailable, "connection refused")
            .with_backend(BACKEND)
            .with_code("X")
            .not_applied();
        let err = after_restore(refused);
        assert!(!err.proves_not_applied(), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(err.message(), "connection refused");
        assert_eq!(err.code(), Some("X"));
        assert!(std::error::Error::source(&err).is_some());
        // A refusal kind says what it says; an unmarked error stays as it is.
        let denied = Error::new(ErrorKind::PermissionDenied, "no");
        assert!(after_restore(denied).proves_not_applied());
        let unknown = Error::new(ErrorKind::Timeout, "slow");
        assert!(!after_restore(unknown).proves_not_applied());
    }
}
