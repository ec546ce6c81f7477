//! [`FailureRecorder`]: an in-process, bounded record of operations that answers the
//! questions of the encryption metrics summary report for any timeframe: counts and average
//! duration per operation and status, failure rate per operation in percent, top failures by
//! operation and reason, and problematic keys (at least 5 decrypts, at least 10 % of them
//! failed). Key names appear in the summary (it is a report, not a metric label); values
//! never do.
//!
//! # Not in the way of key operations
//!
//! Recording sends the record into a bounded channel (`std::sync::mpsc::sync_channel`, a
//! lock-free array queue) and returns; it never waits for a lock. The summary takes the
//! records out of the channel into its own store under a lock that recording only ever
//! *tries* (when the channel is full, to move records along itself); if the summary holds it
//! at that moment, the record is dropped and counted, and summaries over that time say
//! `truncated`. A summary over 100,000 records therefore never blocks a `get`.
//!
//! # Truthful spans
//!
//! At most `max_records` are kept (oldest dropped first). When a summary's timeframe reaches
//! back past the oldest record kept because records were dropped (by the bound or a full
//! queue), it says `truncated: true` and `coveredFrom`/`coveredSeconds` give the span its
//! numbers really cover, instead of calling a few minutes "24 h".

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kms_core::{CryptoOperation, ErrorKind, KeyName, Operation};
use serde::Serialize;

use crate::status::Status;

/// Limits and thresholds of a [`FailureRecorder`].
#[derive(Clone, Debug)]
pub struct FailureRecorderConfig {
    /// The longest timeframe a summary can cover; older records are dropped (default 24 h).
    pub window: Duration,
    /// The most records kept; the oldest go first (default 100,000, about 8 MB).
    pub max_records: usize,
    /// Records waiting between two summaries before recording moves them itself (default
    /// 8,192).
    pub queue: usize,
    /// A key is problematic with at least this many operations … (default 5, as the report)
    pub min_operations: u64,
    /// … of which at least this percentage failed (default 10, as the report).
    pub failure_rate_threshold_percent: f64,
    /// The operations problematic keys are judged on (default `["decrypt"]`, as the
    /// report).
    pub problematic_operations: Vec<&'static str>,
    /// How many top failures a summary lists (default 10, as the report).
    pub top_failures: usize,
}

impl Default for FailureRecorderConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(24 * 3600),
            max_records: 100_000,
            queue: 8192,
            min_operations: 5,
            failure_rate_threshold_percent: 10.0,
            problematic_operations: vec!["decrypt"],
            top_failures: 10,
        }
    }
}

/// The key a record is about: a store's key name (shared, no copy) or a provider's key id.
enum RecordKey {
    Name(KeyName),
    Id(Arc<str>),
}

impl RecordKey {
    fn as_str(&self) -> &str {
        match self {
            Self::Name(name) => name.as_str(),
            Self::Id(id) => id,
        }
    }
}

struct Record {
    at: SystemTime,
    operation: &'static str,
    key: Option<RecordKey>,
    status: Status,
    reason: Option<&'static str>,
    duration: Duration,
}

/// What only the summary touches.
struct Store {
    incoming: Receiver<Record>,
    records: VecDeque<Record>,
    /// The newest record dropped by the `max_records` bound.
    evicted_until: Option<SystemTime>,
}

impl Store {
    fn take_incoming(&mut self, max: usize) {
        while let Ok(record) = self.incoming.try_recv() {
            if self.records.len() >= max
                && let Some(old) = self.records.pop_front()
            {
                self.evicted_until = Some(self.evicted_until.map_or(old.at, |t| t.max(old.at)));
            }
            self.records.push_back(record);
        }
    }
}

struct Shared {
    config: FailureRecorderConfig,
    sender: SyncSender<Record>,
    store: Mutex<Store>,
    /// Unix seconds of the last record dropped because the queue was full (0: never).
    dropped_at: AtomicU64,
    dropped: AtomicU64,
}

/// A bounded recorder; cheap to clone (shared state).
#[derive(Clone)]
pub struct FailureRecorder {
    shared: Arc<Shared>,
}

/// Count and average duration of one operation with one status (the summary report's
/// `metrics` rows).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OperationStatusSummary {
    /// `get`, `store`, `remove`, `list`, `encrypt`, `decrypt`, `generate_data_key`.
    pub operation: &'static str,
    /// `success`, `not_found`, `conflict`, `failure` or `abandoned` (as the metrics' `status`).
    pub status: &'static str,
    /// How many.
    pub count: u64,
    /// Their average duration in milliseconds.
    pub avg_duration: f64,
}

/// The failure rate of one operation (the summary report's `failureRates` rows).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FailureRate {
    /// The operation.
    pub operation: &'static str,
    /// `failure` records × 100 / all its records: a percentage (not-found and conflicts are
    /// answers, not failures).
    pub failure_rate: f64,
}

/// One (operation, reason) pair of failures and how often it happened (the summary
/// report's `topFailures` rows).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FailureReason {
    /// The operation.
    pub operation: &'static str,
    /// The error kind label (`timeout`, `permission_denied`, ...): bounded and never secret,
    /// where an SQL-backed report stores free-form messages.
    pub reason: &'static str,
    /// How many failures.
    pub count: u64,
}

/// A key with enough operations and a high failure rate (the summary report's
/// `findProblematicKeys`).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ProblematicKey {
    /// The key name (or key id).
    pub key_id: String,
    /// Its failure rate over the problematic operations, in percent.
    pub failure_rate: f64,
    /// Its problematic operations in the timeframe.
    pub total_operations: u64,
}

/// The encryption metrics summary over a timeframe, serialisable to the report's JSON.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FailureSummary {
    /// Per operation and status.
    pub metrics: Vec<OperationStatusSummary>,
    /// Per operation, in percent.
    pub failure_rates: Vec<FailureRate>,
    /// The most frequent (operation, reason) failures, most first.
    pub top_failures: Vec<FailureReason>,
    /// Keys over the thresholds, worst rate first, then most operations.
    pub problematic_keys: Vec<ProblematicKey>,
    /// The timeframe asked for, in hours.
    pub timeframe_hours: f64,
    /// Whether records inside the timeframe were dropped (bound or full queue): the numbers
    /// then cover only [`covered_from`](Self::covered_from) onwards.
    pub truncated: bool,
    /// The start of the span the numbers cover, in Unix seconds.
    pub covered_from: u64,
    /// The length of that span, in seconds.
    pub covered_seconds: u64,
    /// Records in the span.
    pub total_operations: u64,
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl FailureRecorder {
    /// A recorder with `config`.
    pub fn new(config: FailureRecorderConfig) -> Self {
        let (sender, incoming) = sync_channel(config.queue.max(1));
        Self {
            shared: Arc::new(Shared {
                config,
                sender,
                store: Mutex::new(Store {
                    incoming,
                    records: VecDeque::new(),
                    evicted_until: None,
                }),
                dropped_at: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
            }),
        }
    }

    /// Records one key store operation (`failure`: its error kind, if it failed).
    pub fn record(
        &self,
        operation: Operation,
        key: Option<&KeyName>,
        failure: Option<ErrorKind>,
        duration: Duration,
    ) {
        self.push(Record {
            at: SystemTime::now(),
            operation: operation.as_str(),
            key: key.cloned().map(RecordKey::Name),
            status: Status::of(failure),
            reason: failure.map(ErrorKind::as_str),
            duration,
        });
    }

    /// Records one encrypt, decrypt or data-key generation, with the id of the key it used
    /// (the summary report records these with a `keyId`).
    pub fn record_crypto(
        &self,
        operation: CryptoOperation,
        key_id: Option<&str>,
        failure: Option<ErrorKind>,
        duration: Duration,
    ) {
        self.push(Record {
            at: SystemTime::now(),
            operation: operation.as_str(),
            key: key_id.map(|id| RecordKey::Id(Arc::from(id))),
            status: Status::of(failure),
            reason: failure.map(ErrorKind::as_str),
            duration,
        });
    }

    /// Records a call its caller gave up on (`status: abandoned`).
    pub(crate) fn record_abandoned(
        &self,
        operation: &'static str,
        key: Option<&KeyName>,
        duration: Duration,
    ) {
        self.push(Record {
            at: SystemTime::now(),
            operation,
            key: key.cloned().map(RecordKey::Name),
            status: Status::Abandoned,
            reason: None,
            duration,
        });
    }

    /// Records one operation at a given time (for replaying history and for tests);
    /// `operation` is any of the operation labels.
    pub fn record_at(
        &self,
        at: SystemTime,
        operation: &'static str,
        key: Option<&str>,
        failure: Option<ErrorKind>,
        duration: Duration,
    ) {
        self.push(Record {
            at,
            operation,
            key: key.map(|id| RecordKey::Id(Arc::from(id))),
            status: Status::of(failure),
            reason: failure.map(ErrorKind::as_str),
            duration,
        });
    }

    fn push(&self, record: Record) {
        let record = match self.shared.sender.try_send(record) {
            Ok(()) => return,
            Err(TrySendError::Full(record) | TrySendError::Disconnected(record)) => record,
        };
        // The queue is full: move it along ourselves, unless a summary is running.
        let at = record.at;
        if let Ok(mut store) = self.shared.store.try_lock() {
            store.take_incoming(self.shared.config.max_records);
            if self.shared.sender.try_send(record).is_ok() {
                return;
            }
        }
        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        self.shared
            .dropped_at
            .fetch_max(unix_secs(at), Ordering::Relaxed);
    }

    /// Records held now, including those waiting in the queue (at most `max_records` +
    /// `queue`).
    pub fn len(&self) -> usize {
        let mut store = self.lock();
        store.take_incoming(self.shared.config.max_records);
        store.records.len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records dropped because the queue was full while a summary ran.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.shared
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The summary of the `timeframe` ending now (capped at the configured window).
    pub fn summary(&self, timeframe: Duration) -> FailureSummary {
        self.summary_at(SystemTime::now(), timeframe)
    }

    /// The summary of the `timeframe` ending at `now`.
    pub fn summary_at(&self, now: SystemTime, timeframe: Duration) -> FailureSummary {
        let config = &self.shared.config;
        let timeframe = timeframe.min(config.window);
        let since = now.checked_sub(timeframe).unwrap_or(UNIX_EPOCH);
        let keep_from = now.checked_sub(config.window).unwrap_or(UNIX_EPOCH);
        let mut store = self.lock();
        store.take_incoming(config.max_records);
        while store.records.front().is_some_and(|r| r.at < keep_from) {
            store.records.pop_front();
        }
        let dropped_at = self.shared.dropped_at.load(Ordering::Relaxed);
        let lost_until = [
            store.evicted_until,
            (dropped_at > 0).then(|| UNIX_EPOCH + Duration::from_secs(dropped_at)),
        ]
        .into_iter()
        .flatten()
        .max();
        let truncated = lost_until.is_some_and(|t| t >= since);
        let covered_from = if truncated {
            let oldest = store.records.front().map_or(now, |r| r.at);
            oldest.max(lost_until.unwrap_or(since)).max(since)
        } else {
            since
        };

        let mut by_op: BTreeMap<(&'static str, &'static str), (u64, Duration)> = BTreeMap::new();
        let mut failures: HashMap<(&'static str, &'static str), u64> = HashMap::new();
        let mut keys: HashMap<&str, (u64, u64)> = HashMap::new();
        let mut total = 0;
        for r in store
            .records
            .iter()
            .filter(|r| r.at >= covered_from && r.at <= now)
        {
            total += 1;
            let e = by_op.entry((r.operation, r.status.as_str())).or_default();
            e.0 += 1;
            e.1 += r.duration;
            let failed = r.status == Status::Failure;
            if failed {
                *failures
                    .entry((r.operation, r.reason.unwrap_or("unknown")))
                    .or_default() += 1;
            }
            if let Some(key) = &r.key
                && config.problematic_operations.contains(&r.operation)
            {
                let k = keys.entry(key.as_str()).or_default();
                k.0 += 1;
                k.1 += u64::from(failed);
            }
        }

        let mut per_op: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
        for ((op, status), (count, _)) in &by_op {
            let e = per_op.entry(op).or_default();
            e.0 += count;
            if *status == "failure" {
                e.1 += count;
            }
        }
        let failure_rates = per_op
            .into_iter()
            .map(|(operation, (count, failed))| FailureRate {
                operation,
                failure_rate: failed as f64 * 100.0 / count as f64,
            })
            .collect();
        let mut top: Vec<FailureReason> = failures
            .into_iter()
            .map(|((operation, reason), count)| FailureReason {
                operation,
                reason,
                count,
            })
            .collect();
        top.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(a.operation.cmp(b.operation))
                .then(a.reason.cmp(b.reason))
        });
        top.truncate(config.top_failures);
        let mut problematic: Vec<ProblematicKey> = keys
            .into_iter()
            .filter_map(|(key, (ops, failed))| {
                let rate = failed as f64 * 100.0 / ops as f64;
                (ops >= config.min_operations && rate >= config.failure_rate_threshold_percent)
                    .then(|| ProblematicKey {
                        key_id: key.to_string(),
                        failure_rate: rate,
                        total_operations: ops,
                    })
            })
            .collect();
        drop(store);
        problematic.sort_by(|a, b| {
            b.failure_rate
                .total_cmp(&a.failure_rate)
                .then(b.total_operations.cmp(&a.total_operations))
                .then(a.key_id.cmp(&b.key_id))
        });
        FailureSummary {
            metrics: by_op
                .into_iter()
                .map(
                    |((operation, status), (count, sum))| OperationStatusSummary {
                        operation,
                        status,
                        count,
                        avg_duration: sum.as_secs_f64() * 1000.0 / count as f64,
                    },
                )
                .collect(),
            failure_rates,
            top_failures: top,
            problematic_keys: problematic,
            timeframe_hours: timeframe.as_secs_f64() / 3600.0,
            truncated,
            covered_from: unix_secs(covered_from),
            covered_seconds: now
                .duration_since(covered_from)
                .unwrap_or_default()
                .as_secs(),
            total_operations: total,
        }
    }

    /// The summary of the `timeframe` ending now, as JSON.
    pub fn summary_json(&self, timeframe: Duration) -> String {
        serde_json::to_string_pretty(&self.summary(timeframe)).expect("summaries serialise")
    }
}

impl std::fmt::Debug for FailureRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailureRecorder")
            .field("config", &self.shared.config)
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recording while a summary holds the store returns at once: the lock is only tried.
    /// (Were it taken, this single thread would deadlock on itself.)
    #[test]
    fn recording_never_waits_for_a_running_summary() {
        let recorder = FailureRecorder::new(FailureRecorderConfig {
            queue: 64,
            ..FailureRecorderConfig::default()
        });
        let held = recorder.lock();
        for _ in 0..1000 {
            recorder.record(Operation::Get, None, None, Duration::ZERO);
        }
        drop(held);
        assert_eq!(recorder.dropped(), 1000 - 64);
        let summary = recorder.summary(Duration::from_secs(60));
        assert_eq!(summary.total_operations, 64);
        assert!(
            summary.truncated,
            "records were dropped inside the timeframe"
        );
    }

    /// With the store free, a full queue is moved along by the recording thread: nothing lost.
    #[test]
    fn a_full_queue_is_drained_by_recording() {
        let recorder = FailureRecorder::new(FailureRecorderConfig {
            queue: 8,
            ..FailureRecorderConfig::default()
        });
        for _ in 0..1000 {
            recorder.record(Operation::Get, None, None, Duration::ZERO);
        }
        assert_eq!(recorder.dropped(), 0);
        let summary = recorder.summary(Duration::from_secs(60));
        assert_eq!(summary.total_operations, 1000);
        assert!(!summary.truncated);
    }
}
