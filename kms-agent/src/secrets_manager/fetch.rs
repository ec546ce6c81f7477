//! Answering a `GetSecretValue` request from a store.
//!
//! - No `versionId` and no `versionStage` (or `AWSCURRENT`): the store's current value;
//!   `refreshNow=true` reloads it through the cache (the cache keeps its entry if the reload
//!   fails, as the AWS agent does). `VersionStages` is `["AWSCURRENT"]`.
//! - `versionId`: that version (stores with versions: Vault KV v2, AWS, memory).
//!   `VersionStages` is `["AWSCURRENT"]` if it is the current version, `["AWSPREVIOUS"]` if it
//!   is the one before (stores with numbered versions), else `[]`. With a `versionStage` too,
//!   the version must carry it.
//! - `versionStage` on an AWS store: the store opened for that label (kept, at most
//!   [`MAX_STAGE_STORES`](crate::store_slot::MAX_STAGE_STORES) labels). On other stores,
//!   `AWSPREVIOUS` is the version numbered one below the current one; other labels do not
//!   exist.

use std::sync::Arc;

use kms::{KeyName, KeyStore, StoredSecret};

use super::arn::{self, Target};
use super::error::SmError;
use super::error_map::to_sm_error;
use super::output::Secret;
use super::query::GetQuery;
use crate::snapshot::Snapshot;
use crate::store_slot::StoreSlot;

const NOT_FOUND: &str = "Secrets Manager can't find the specified secret.";
const CURRENT: &str = "AWSCURRENT";
const PREVIOUS: &str = "AWSPREVIOUS";

fn version_not_found(v: &str) -> String {
    format!("Secrets Manager can't find the specified secret value for VersionId: {v}")
}

fn stage_not_found(stage: &str) -> String {
    format!("Secrets Manager can't find the specified secret value for staging label: {stage}")
}

/// The store and name `secret_id` points at.
pub fn resolve<'a>(
    snap: &'a Snapshot,
    secret_id: &'a str,
) -> Result<(&'a Arc<StoreSlot>, &'a str), SmError> {
    match arn::target(secret_id) {
        Target::Default(name) => match snap.default_slot() {
            Some(slot) => Ok((slot, name)),
            None => Err(SmError::aws(
                400,
                "InvalidRequestException",
                "several stores and no `default`: name one in the configuration, or use an ARN \
                 arn:kms:secretsmanager:<store>:000000000000:secret:<name>",
            )),
        },
        Target::Store { store, name } => match snap.store(store) {
            Some(slot) => Ok((slot, name)),
            None => Err(SmError::not_found(NOT_FOUND)),
        },
    }
}

fn key(name: &str) -> Result<KeyName, SmError> {
    KeyName::new(name).map_err(|e| to_sm_error(&e, NOT_FOUND))
}

/// The version numbered one below `current`'s, if versions are numbers.
fn previous_version(current: &StoredSecret) -> Option<String> {
    let n: u64 = current.meta.version.as_deref()?.parse().ok()?;
    (n > 1).then(|| (n - 1).to_string())
}

async fn current(slot: &StoreSlot, key: &KeyName, refresh: bool) -> kms::Result<StoredSecret> {
    match slot.cache() {
        Some(cache) if refresh => cache.refresh(key).await,
        _ => slot.store().get(key).await,
    }
}

/// The labels version `v` carries, as far as the store can tell.
async fn stages_of(slot: &StoreSlot, key: &KeyName, v: &str) -> Vec<&'static str> {
    match slot.store().get(key).await {
        Ok(cur) if cur.meta.version.as_deref() == Some(v) => vec![CURRENT],
        Ok(cur) if !slot.has_stages() && previous_version(&cur).as_deref() == Some(v) => {
            vec![PREVIOUS]
        }
        _ => Vec::new(),
    }
}

/// Reads what `q` asks of `key` in `slot`: the secret and its labels.
async fn read(
    slot: &StoreSlot,
    key: &KeyName,
    q: &GetQuery,
) -> Result<(StoredSecret, Vec<String>), SmError> {
    match (q.version_id.as_deref(), q.version_stage.as_deref()) {
        (None, None | Some(CURRENT)) => {
            let s = current(slot, key, q.refresh_now)
                .await
                .map_err(|e| to_sm_error(&e, NOT_FOUND))?;
            Ok((s, vec![CURRENT.to_owned()]))
        }
        (Some(v), stage) => {
            let s = slot
                .store()
                .get_version(key, v)
                .await
                .map_err(|e| to_sm_error(&e, &version_not_found(v)))?;
            let stages = stages_of(slot, key, v).await;
            if let Some(stage) = stage
                && !stages.contains(&stage)
            {
                return Err(SmError::not_found(format!(
                    "Secrets Manager can't find the specified secret value for VersionId: {v} \
                     and staging label: {stage}"
                )));
            }
            Ok((s, stages.into_iter().map(str::to_owned).collect()))
        }
        (None, Some(stage)) if slot.has_stages() => {
            let store: Arc<dyn KeyStore> = slot
                .stage(stage)
                .await
                .map_err(|e| to_sm_error(&e, &stage_not_found(stage)))?;
            let s = store
                .get(key)
                .await
                .map_err(|e| to_sm_error(&e, &stage_not_found(stage)))?;
            Ok((s, vec![stage.to_owned()]))
        }
        (None, Some(PREVIOUS)) => {
            let cur = slot
                .store()
                .get(key)
                .await
                .map_err(|e| to_sm_error(&e, NOT_FOUND))?;
            let prev = previous_version(&cur)
                .ok_or_else(|| SmError::not_found(stage_not_found(PREVIOUS)))?;
            let s = slot
                .store()
                .get_version(key, &prev)
                .await
                .map_err(|e| to_sm_error(&e, &stage_not_found(PREVIOUS)))?;
            Ok((s, vec![PREVIOUS.to_owned()]))
        }
        (None, Some(stage)) => Err(SmError::not_found(stage_not_found(stage))),
    }
}

/// Answers `q`: the `GetSecretValue` JSON body.
///
/// # Errors
///
/// What the AWS agent would answer: a Secrets Manager error with its status.
pub async fn fetch(snap: &Snapshot, q: &GetQuery) -> Result<Vec<u8>, SmError> {
    if q.role_arn.is_some() {
        return Err(SmError::aws(
            400,
            "InvalidParameterException",
            "roleArn is not supported by kms-agent: configure a store per role instead",
        ));
    }
    let (slot, name) = resolve(snap, &q.secret_id)?;
    let key = key(name)?;
    let (secret, stages) = read(slot, &key, q).await?;
    let stages: Vec<&str> = stages.iter().map(String::as_str).collect();
    let arn = arn::synthesize(slot.name(), name);
    Ok(Secret {
        arn: &arn,
        name,
        version_id: secret.meta.version.as_deref(),
        value: &secret.value,
        stages: &stages,
        created: secret.meta.created_at,
    }
    .to_json())
}

/// Reads `secret_id`'s current value into its store's cache (the prefetch).
///
/// # Errors
///
/// What the AWS agent would answer (as for a request).
pub async fn warm(snap: &Snapshot, secret_id: &str) -> Result<(), SmError> {
    let (slot, name) = resolve(snap, secret_id)?;
    let key = key(name)?;
    slot.store()
        .get(&key)
        .await
        .map(drop)
        .map_err(|e| to_sm_error(&e, NOT_FOUND))
}
