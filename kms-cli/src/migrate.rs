//! The migrate engine: every key under a prefix from one store to another, each key written
//! whole (one `store` call) or not at all, safe to re-run after an interruption.

use std::fmt;

use futures::StreamExt;
use kms_core::{Error, ErrorKind, KeyName, KeyPrefix, KeyStore};
use serde::Serialize;

use crate::compare::values_equal;
use crate::held::read_held;
use crate::progress::Progress;
use crate::stop::Stop;

/// What to do with a key that already exists in the destination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Existing {
    /// Skip it when its value is equal (compared in constant time); fail it, with a
    /// conflict, when it differs. Re-running an interrupted migrate therefore copies only
    /// what is missing, and never silently replaces a value someone changed.
    #[default]
    Compare,
    /// Skip it whatever its value (`--skip-existing`).
    Skip,
    /// Replace it when its value differs (`--overwrite`); an equal value is still skipped.
    Overwrite,
}

/// How to run a migrate.
#[derive(Clone, Debug)]
pub struct MigrateOptions {
    /// Only keys whose names start with this.
    pub prefix: KeyPrefix,
    /// Decide everything, write nothing.
    pub dry_run: bool,
    /// What to do with keys present in the destination.
    pub existing: Existing,
    /// Keys in flight at once (at least 1).
    pub concurrency: usize,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        Self {
            prefix: KeyPrefix::all(),
            dry_run: false,
            existing: Existing::Compare,
            concurrency: 4,
        }
    }
}

/// What happened to one key.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Written to the destination, which did not hold the key (in a dry run: would be).
    Copied,
    /// Written over a different value, as `--overwrite` asks (in a dry run: would be).
    Overwritten,
    /// Left alone: the destination already holds this value.
    Unchanged,
    /// Left alone: the destination holds a different value and `--skip-existing` keeps it.
    Kept,
    /// Listed by the source but not held by it (reads as not found: deleted, or a
    /// soft-deleted Vault KV v2 version; see [`crate::held`]): nothing to copy.
    NotHeld,
    /// Not written, and the error (the destination is as it was for this key); a
    /// different destination value is a [`ErrorKind::Conflict`].
    Failed(Error),
    /// Not attempted: the run was interrupted first.
    NotStarted,
}

impl Outcome {
    /// `"copied"` (copied or overwritten), `"skipped"` (unchanged or kept), `"failed"`,
    /// `"not_held"` or `"not_started"`.
    pub const fn status(&self) -> &'static str {
        match self {
            Self::Copied | Self::Overwritten => "copied",
            Self::Unchanged | Self::Kept => "skipped",
            Self::NotHeld => "not_held",
            Self::Failed(_) => "failed",
            Self::NotStarted => "not_started",
        }
    }

    /// The finer word: `"new"`, `"overwritten"`, `"unchanged"`, `"kept"`, `"not_held"`,
    /// `"conflict"`, `"failed"` or `"not_started"`.
    pub fn detail(&self) -> &'static str {
        match self {
            Self::Copied => "new",
            Self::Overwritten => "overwritten",
            Self::Unchanged => "unchanged",
            Self::Kept => "kept",
            Self::NotHeld => "not_held",
            Self::Failed(e) if e.kind() == ErrorKind::Conflict => "conflict",
            Self::Failed(_) => "failed",
            Self::NotStarted => "not_started",
        }
    }

    /// Why the key was skipped or failed (never a value).
    pub fn reason(&self) -> Option<String> {
        match self {
            Self::Copied => None,
            Self::Overwritten => {
                Some("replaced a different destination value (--overwrite)".to_owned())
            }
            Self::Unchanged => Some("destination already holds this value".to_owned()),
            Self::Kept => {
                Some("the destination holds a different value, kept (--skip-existing)".to_owned())
            }
            Self::NotHeld => {
                Some("listed by the source, but reading it answers not found (deleted)".to_owned())
            }
            Self::Failed(err) => Some(err.to_string()),
            Self::NotStarted => Some("interrupted before this key".to_owned()),
        }
    }
}

/// One key and its outcome.
#[derive(Clone, Debug)]
pub struct KeyOutcome {
    /// The key.
    pub key: KeyName,
    /// What happened to it.
    pub outcome: Outcome,
}

/// The result of a run: every key listed in the source, sorted by name.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Every key and what happened to it.
    pub keys: Vec<KeyOutcome>,
    /// Nothing was written.
    pub dry_run: bool,
    /// The run was stopped (SIGINT) before every key was attempted.
    pub interrupted: bool,
}

/// Counts of a [`Summary`]: every key listed in the source is in exactly one of them, except
/// keys the source lists but does not hold ([`Outcome::NotHeld`], counted in
/// [`Details::not_held`] only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Keys written (or, in a dry run, that would be), overwritten ones included.
    pub copied: usize,
    /// Keys left alone: unchanged, or kept by `--skip-existing`.
    pub skipped: usize,
    /// Keys that failed, conflicts included.
    pub failed: usize,
    /// Keys not attempted because of an interruption.
    pub not_started: usize,
}

/// The finer counts of a [`Summary`], inside the [`Counts`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Details {
    /// Of the copied keys, those written over a different value (`--overwrite`).
    pub overwritten: usize,
    /// Of the skipped keys, those whose destination already held the same value.
    pub unchanged: usize,
    /// Of the skipped keys, those whose different destination value was kept
    /// (`--skip-existing`).
    pub kept: usize,
    /// Of the failed keys, those whose destination holds a different value.
    pub conflicts: usize,
    /// Keys the source lists but does not hold (not in [`Counts`]).
    pub not_held: usize,
}

impl Summary {
    /// How many keys ended each way.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for k in &self.keys {
            match k.outcome {
                Outcome::Copied | Outcome::Overwritten => counts.copied += 1,
                Outcome::Unchanged | Outcome::Kept => counts.skipped += 1,
                Outcome::Failed(_) => counts.failed += 1,
                Outcome::NotStarted => counts.not_started += 1,
                Outcome::NotHeld => {}
            }
        }
        counts
    }

    /// The finer counts.
    pub fn details(&self) -> Details {
        let mut details = Details::default();
        for k in &self.keys {
            match k.outcome.detail() {
                "overwritten" => details.overwritten += 1,
                "unchanged" => details.unchanged += 1,
                "kept" => details.kept += 1,
                "conflict" => details.conflicts += 1,
                "not_held" => details.not_held += 1,
                _ => {}
            }
        }
        details
    }

    /// No key failed and the run was not interrupted.
    pub fn is_complete(&self) -> bool {
        !self.interrupted && self.counts().failed == 0
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "copied {}, skipped {}, failed {}",
            self.copied, self.skipped, self.failed
        )?;
        if self.not_started > 0 {
            write!(f, ", not started {}", self.not_started)?;
        }
        Ok(())
    }
}

/// Lists the keys under `options.prefix` in `from` and copies them to `to`.
///
/// # Errors
///
/// Only the listing of the source: [`ErrorKind::Unsupported`] if `from` cannot list, or what
/// its `list` returns. Failures of single keys are in the [`Summary`].
pub async fn migrate(
    from: &dyn KeyStore,
    to: &dyn KeyStore,
    options: &MigrateOptions,
    progress: &dyn Progress,
    stop: &Stop,
) -> Result<Summary, Error> {
    let mut keys = from.list(&options.prefix).await?;
    keys.sort();
    Ok(copy_keys(from, to, keys, options, progress, stop).await)
}

/// Copies `keys` from `from` to `to` (the part of [`migrate`] after the listing; `import`
/// uses it with the decrypted bundle as the source).
pub async fn copy_keys(
    from: &dyn KeyStore,
    to: &dyn KeyStore,
    keys: Vec<KeyName>,
    options: &MigrateOptions,
    progress: &dyn Progress,
    stop: &Stop,
) -> Summary {
    progress.start(keys.len() as u64);
    let mut done: Vec<KeyOutcome> = futures::stream::iter(keys)
        .map(|key| async move {
            let outcome = if stop.is_set() {
                Outcome::NotStarted
            } else {
                copy_one(from, to, &key, options).await
            };
            progress.advance(&key, matches!(outcome, Outcome::Failed(_)));
            KeyOutcome { key, outcome }
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    progress.finish();
    done.sort_by(|a, b| a.key.cmp(&b.key));
    let interrupted = done
        .iter()
        .any(|k| matches!(k.outcome, Outcome::NotStarted));
    Summary {
        keys: done,
        dry_run: options.dry_run,
        interrupted,
    }
}

/// Copies one key: one read of the source, one of the destination, at most one write. Both
/// reads follow [`crate::held`]: a key either store lists but reads as not found is not held
/// there.
pub async fn copy_one(
    from: &dyn KeyStore,
    to: &dyn KeyStore,
    key: &KeyName,
    options: &MigrateOptions,
) -> Outcome {
    let source = match read_held(from, key).await {
        Ok(Some(secret)) => secret,
        Ok(None) => return Outcome::NotHeld,
        Err(e) => return Outcome::Failed(e),
    };
    let mut replaces = false;
    match read_held(to, key).await {
        Ok(Some(existing)) => {
            if values_equal(&existing.value, &source.value) {
                return Outcome::Unchanged;
            }
            match options.existing {
                Existing::Skip => return Outcome::Kept,
                Existing::Compare => {
                    return Outcome::Failed(Error::new(
                        ErrorKind::Conflict,
                        "the destination holds a different value; --overwrite replaces it, --skip-existing keeps it",
                    ));
                }
                Existing::Overwrite => replaces = true,
            }
        }
        Ok(None) => {}
        Err(e) => return Outcome::Failed(e),
    }
    let done = if replaces {
        Outcome::Overwritten
    } else {
        Outcome::Copied
    };
    if options.dry_run {
        return done;
    }
    match to.store(key, source.value).await {
        Ok(_) => done,
        Err(e) => Outcome::Failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;
    use kms_core::{KeyStoreExt, MemoryStore};

    async fn seeded(n: usize) -> MemoryStore {
        let store = MemoryStore::new();
        for i in 0..n {
            store
                .put(&format!("app/k{i:03}"), format!("value-{i}").as_str())
                .await
                .unwrap();
        }
        store.put("other/x", "x").await.unwrap();
        store
    }

    fn opts() -> MigrateOptions {
        MigrateOptions {
            prefix: KeyPrefix::new("app/").unwrap(),
            ..MigrateOptions::default()
        }
    }

    #[tokio::test]
    async fn copies_every_key_under_the_prefix_and_nothing_else() {
        let from = seeded(20).await;
        let to = MemoryStore::new();
        let summary = migrate(&from, &to, &opts(), &NoProgress, &Stop::new())
            .await
            .unwrap();
        assert_eq!(
            summary.counts(),
            Counts {
                copied: 20,
                ..Counts::default()
            }
        );
        assert!(summary.is_complete());
        assert_eq!(to.len(), 20);
        assert_eq!(
            to.get_value("app/k007")
                .await
                .unwrap()
                .expose_str()
                .unwrap(),
            "value-7"
        );
        assert!(to.get_value("other/x").await.is_err());
    }

    #[tokio::test]
    async fn rerun_skips_equal_values_and_copies_the_rest() {
        let from = seeded(10).await;
        let to = MemoryStore::new();
        to.put("app/k003", "value-3").await.unwrap();
        let summary = migrate(&from, &to, &opts(), &NoProgress, &Stop::new())
            .await
            .unwrap();
        assert_eq!(
            summary.counts(),
            Counts {
                copied: 9,
                skipped: 1,
                ..Counts::default()
            }
        );
        let again = migrate(&from, &to, &opts(), &NoProgress, &Stop::new())
            .await
            .unwrap();
        assert_eq!(
            again.counts(),
            Counts {
                skipped: 10,
                ..Counts::default()
            }
        );
    }

    #[tokio::test]
    async fn a_different_destination_value_is_a_conflict_unless_told() {
        let from = seeded(2).await;
        let to = MemoryStore::new();
        to.put("app/k000", "changed").await.unwrap();
        let summary = migrate(&from, &to, &opts(), &NoProgress, &Stop::new())
            .await
            .unwrap();
        assert_eq!(
            summary.counts(),
            Counts {
                copied: 1,
                failed: 1,
                ..Counts::default()
            }
        );
        let Outcome::Failed(e) = &summary.keys[0].outcome else {
            panic!("{summary:?}")
        };
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert_eq!(
            to.get_value("app/k000")
                .await
                .unwrap()
                .expose_str()
                .unwrap(),
            "changed"
        );

        let skip = MigrateOptions {
            existing: Existing::Skip,
            ..opts()
        };
        let summary = migrate(&from, &to, &skip, &NoProgress, &Stop::new())
            .await
            .unwrap();
        assert_eq!(
            summary.counts(),
            Counts {
                skipped: 2,
                ..Counts::default()
            }
        );
        assert_eq!(
            to.get_value("app/k000")
                .await
                .unwrap()
                .expose_str()
                .unwrap(),
            "changed"
        );

        let over = MigrateOptions {
            existing: Existing::Overwrite,
            ..opts()
        };
        let summary = migrate(&from, &to, &over, &NoProgress, &Stop::new())
            .await
            .unwrap();
        assert_eq!(
            summary.counts(),
            Counts {
                copied: 1,
                skipped: 1,
                ..Counts::default()
            }
        );
        assert_eq!(
            to.get_value("app/k000")
                .await
                .unwrap()
                .expose_str()
                .unwrap(),
            "value-0"
        );
    }

    #[tokio::test]
    async fn dry_run_writes_nothing() {
        let from = seeded(5).await;
        let to = MemoryStore::new();
        let dry = MigrateOptions {
            dry_run: true,
            ..opts()
        };
        let summary = migrate(&from, &to, &dry, &NoProgress, &Stop::new())
            .await
            .unwrap();
        assert_eq!(summary.counts().copied, 5);
        assert!(summary.dry_run);
        assert!(to.is_empty());
    }

    #[tokio::test]
    async fn a_set_stop_flag_starts_no_key() {
        let from = seeded(5).await;
        let to = MemoryStore::new();
        let stop = Stop::new();
        stop.set();
        let summary = migrate(&from, &to, &opts(), &NoProgress, &stop)
            .await
            .unwrap();
        assert_eq!(summary.counts().not_started, 5);
        assert!(summary.interrupted && !summary.is_complete());
        assert!(to.is_empty());
    }

    #[tokio::test]
    async fn a_value_the_destination_refuses_fails_that_key_only() {
        let from = seeded(3).await;
        from.put("app/big", vec![7u8; 2048]).await.unwrap();
        let to = MemoryStore::builder().max_value_len(1024).build();
        let summary = migrate(&from, &to, &opts(), &NoProgress, &Stop::new())
            .await
            .unwrap();
        assert_eq!(
            summary.counts(),
            Counts {
                copied: 3,
                failed: 1,
                ..Counts::default()
            }
        );
        let Outcome::Failed(e) = &summary.keys[0].outcome else {
            panic!("{summary:?}")
        };
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(to.get_value("app/big").await.is_err());
    }

    #[tokio::test]
    async fn the_details_say_why_keys_were_skipped_or_failed() {
        let from = seeded(4).await;
        let to = MemoryStore::new();
        to.put("app/k000", "value-0").await.unwrap();
        to.put("app/k001", "changed").await.unwrap();
        let summary = migrate(&from, &to, &opts(), &NoProgress, &Stop::new())
            .await
            .unwrap();
        assert_eq!(
            summary.details(),
            Details {
                unchanged: 1,
                conflicts: 1,
                ..Details::default()
            }
        );
        let kinds: Vec<_> = summary.keys.iter().map(|k| k.outcome.detail()).collect();
        assert_eq!(kinds, ["unchanged", "conflict", "new", "new"]);
        let skip = MigrateOptions {
            existing: Existing::Skip,
            ..opts()
        };
        let summary = migrate(&from, &to, &skip, &NoProgress, &Stop::new())
            .await
            .unwrap();
        assert_eq!(
            summary.details(),
            Details {
                unchanged: 3,
                kept: 1,
                ..Details::default()
            }
        );
        let over = MigrateOptions {
            existing: Existing::Overwrite,
            dry_run: true,
            ..opts()
        };
        let summary = migrate(&from, &to, &over, &NoProgress, &Stop::new())
            .await
            .unwrap();
        assert_eq!(summary.details().overwritten, 1);
        assert_eq!(summary.counts().copied, 1);
        assert_eq!(
            to.get_value("app/k001")
                .await
                .unwrap()
                .expose_str()
                .unwrap(),
            "changed"
        );
    }

    #[tokio::test]
    async fn a_key_the_source_lists_but_does_not_hold_is_not_copied_and_diff_agrees() {
        let from = crate::held::ListsDeleted::new(seeded(3).await, &["app/soft-deleted"]);
        let to = MemoryStore::new();
        let summary = migrate(&from, &to, &opts(), &NoProgress, &Stop::new())
            .await
            .unwrap();
        assert_eq!(
            summary.counts(),
            Counts {
                copied: 3,
                ..Counts::default()
            }
        );
        assert_eq!(summary.details().not_held, 1);
        assert!(summary.is_complete());
        let report = crate::diff::diff(&from, &to, &opts().prefix, 4)
            .await
            .unwrap();
        assert!(report.is_same(), "{report:?}");
    }
}
