//! [`Rotator`]: rotate, on a schedule, the keys under a prefix whose current version is too
//! old.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::rotate::{Rotated, Rotation};
use crate::error::{Error, ErrorKind};
use crate::key_name::{KeyName, KeyPrefix};
use crate::store::KeyStore;

type Clock = dyn Fn() -> SystemTime + Send + Sync;

/// Rotates the keys under a prefix whose current version is older than a maximum age.
///
/// Each run [`list`](KeyStore::list)s the prefix, [`get`](KeyStore::get)s every key for its
/// version's [`created_at`](crate::SecretMeta::created_at), and runs the [`Rotation`] on every
/// key at least [`max_age`](Self::max_age) old (default 90 days, the NIST SP 800-57
/// cryptoperiod the "rotation overdue" alert uses), at most
/// [`concurrency`](Self::concurrency) at a time (default 4). A key whose store gives no
/// creation time cannot be judged and is [skipped](RotationReport::skipped), never rotated.
///
/// [`spawn`](Self::spawn) runs it on a Tokio task: the first run after a random delay of up to
/// [`jitter`](Self::jitter) × interval (so a fleet started together does not rotate in the
/// same second), then every [`interval`](Self::interval) (default 1 h) ± the jitter. Dropping
/// the [`RotatorHandle`] stops it: a run in progress is abandoned at its next await point (a
/// rotation whose write was sent may still land; it is a check-and-set, so it never
/// overwrites a newer version). [`run_once`](Self::run_once) is one run, for a command or a
/// test.
///
/// Two rotators over one store (two replicas of a service) do not rotate a key twice in one
/// period: the second one's check-and-set against the version it read fails with
/// [`ErrorKind::Conflict`], reported in [`RotationReport::failed`], and the next run finds
/// the key fresh.
#[derive(Clone)]
pub struct Rotator<S: ?Sized> {
    store: Arc<S>,
    prefix: KeyPrefix,
    max_age: Duration,
    interval: Duration,
    jitter: f64,
    concurrency: usize,
    rotation: Rotation,
    clock: Arc<Clock>,
}

/// What one run of a [`Rotator`] did.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RotationReport {
    /// Keys examined (listed and read).
    pub examined: usize,
    /// Keys rotated.
    pub rotated: Vec<Rotated>,
    /// Keys that were due but could not be rotated, or could not be read.
    pub failed: Vec<RotationFailure>,
    /// Keys whose store gives no creation time, so their age is unknown (not rotated).
    pub skipped: Vec<KeyName>,
    /// The listing of the prefix failed: nothing was examined.
    pub list_error: Option<Error>,
}

impl RotationReport {
    /// Whether everything due was rotated (nothing failed, the listing worked).
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty() && self.list_error.is_none()
    }
}

/// A key a [`Rotator`] could not rotate.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RotationFailure {
    /// The key.
    pub key: KeyName,
    /// The error (never holds a value).
    pub error: Error,
}

impl RotationFailure {
    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        self.error.kind()
    }
}

impl<S: KeyStore + ?Sized> Rotator<S> {
    /// The default maximum age of a current version: 90 days.
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(90 * 24 * 3600);
    /// The default time between runs: 1 hour.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(3600);
    /// The default number of keys rotated at once: 4.
    pub const DEFAULT_CONCURRENCY: usize = 4;
    /// The default jitter: 10 % of the interval.
    pub const DEFAULT_JITTER: f64 = 0.1;

    /// A rotator of the keys under `prefix` in `store`, with the defaults.
    pub fn new(store: Arc<S>, prefix: KeyPrefix) -> Self {
        Self {
            store,
            prefix,
            max_age: Self::DEFAULT_MAX_AGE,
            interval: Self::DEFAULT_INTERVAL,
            jitter: Self::DEFAULT_JITTER,
            concurrency: Self::DEFAULT_CONCURRENCY,
            rotation: Rotation::new(),
            clock: Arc::new(SystemTime::now),
        }
    }

    /// Rotates keys whose current version is at least this old.
    #[must_use]
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// Time between runs of [`spawn`](Self::spawn) (at least 1 s).
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_secs(1));
        self
    }

    /// How much each wait may differ from the interval, as a fraction of it (0 to 1).
    #[must_use]
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// At most this many keys are read or rotated at once (at least 1).
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The rotation run on each due key (its generator, field and observer).
    #[must_use]
    pub fn rotation(mut self, rotation: Rotation) -> Self {
        self.rotation = rotation;
        self
    }

    /// The wall clock ages are measured against (default `SystemTime::now`); for tests and
    /// simulations.
    #[must_use]
    pub fn clock<F>(mut self, now: F) -> Self
    where
        F: Fn() -> SystemTime + Send + Sync + 'static,
    {
        self.clock = Arc::new(now);
        self
    }

    /// One run: examines every key under the prefix and rotates the overdue ones.
    pub async fn run_once(&self) -> RotationReport {
        let mut report = RotationReport::default();
        let names = match self.store.list(&self.prefix).await {
            Ok(mut names) => {
                names.sort();
                names.dedup();
                names
            }
            Err(e) => {
                report.list_error = Some(e);
                return report;
            }
        };
        report.examined = names.len();
        let now = (self.clock)();
        let mut results = futures::stream::iter(names)
            .map(|key| async move {
                let outcome = self.rotate_if_due(&key, now).await;
                (key, outcome)
            })
            .buffer_unordered(self.concurrency);
        while let Some((key, outcome)) = results.next().await {
            match outcome {
                Due::Fresh => {}
                Due::Unknown => report.skipped.push(key),
                Due::Rotated(done) => report.rotated.push(done),
                Due::Failed(error) => report.failed.push(RotationFailure { key, error }),
            }
        }
        report.rotated.sort_by(|a, b| a.key.cmp(&b.key));
        report.failed.sort_by(|a, b| a.key.cmp(&b.key));
        report.skipped.sort();
        report
    }

    async fn rotate_if_due(&self, key: &KeyName, now: SystemTime) -> Due {
        let current = match self.store.get(key).await {
            Ok(current) => current,
            // Removed since the listing: nothing to rotate.
            Err(e) if e.is_not_found() => return Due::Fresh,
            Err(e) => return Due::Failed(e),
        };
        let Some(created) = current.meta.created_at else {
            return Due::Unknown;
        };
        drop(current);
        if now.duration_since(created).unwrap_or_default() < self.max_age {
            return Due::Fresh;
        }
        match self.rotation.run(self.store.as_ref(), key).await {
            Ok(done) => Due::Rotated(done),
            // Removed between the read and the rotation.
            Err(e) if e.is_not_found() => Due::Fresh,
            Err(e) => Due::Failed(e),
        }
    }

    fn wait(&self, fraction_of_interval: f64) -> Duration {
        Duration::from_secs_f64(self.interval.as_secs_f64() * fraction_of_interval.max(0.0))
    }

    /// Runs the rotator on a Tokio task until the handle is dropped (see the type docs).
    pub fn spawn(self) -> RotatorHandle {
        let (tx, rx) = watch::channel(None);
        let task = tokio::spawn(async move {
            tokio::time::sleep(self.wait(self.jitter * fastrand::f64())).await;
            loop {
                let report = self.run_once().await;
                if tx.send(Some(Arc::new(report))).is_err() {
                    return;
                }
                let spread = self.jitter * (fastrand::f64() * 2.0 - 1.0);
                tokio::time::sleep(self.wait(1.0 + spread)).await;
            }
        });
        RotatorHandle { task, reports: rx }
    }
}

enum Due {
    Fresh,
    Unknown,
    Rotated(Rotated),
    Failed(Error),
}

/// A running [`Rotator`]; dropping it stops the rotator.
#[derive(Debug)]
pub struct RotatorHandle {
    task: JoinHandle<()>,
    reports: watch::Receiver<Option<Arc<RotationReport>>>,
}

impl RotatorHandle {
    /// Waits for the next run to finish and returns its report.
    pub async fn next_report(&mut self) -> Option<Arc<RotationReport>> {
        self.reports.changed().await.ok()?;
        self.reports.borrow_and_update().clone()
    }

    /// The last run's report, if a run finished.
    pub fn last_report(&self) -> Option<Arc<RotationReport>> {
        self.reports.borrow().clone()
    }
}

impl Drop for RotatorHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<S: KeyStore + ?Sized> fmt::Debug for Rotator<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rotator")
            .field("store", &format_args!("{}", self.store))
            .field("prefix", &self.prefix)
            .field("max_age", &self.max_age)
            .field("interval", &self.interval)
            .field("jitter", &self.jitter)
            .field("concurrency", &self.concurrency)
            .field("rotation", &self.rotation)
            .finish_non_exhaustive()
    }
}
