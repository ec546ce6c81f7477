//! [`FailureRecorder`]: an in-process, bounded, rolling-window record of operations that
//! answers the failure-summary questions of the seed documents: counts and average duration
//! per operation and status, failure rate per operation, top failure reasons, and problematic
//! keys. Key names appear in the summary (it is a report, not a metric label); values never do.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kms_core::{ErrorKind, KeyName, Operation};
use parking_lot::Mutex;
use serde::Serialize;

/// Limits of a [`FailureRecorder`].
#[derive(Clone, Copy, Debug)]
pub struct FailureRecorderConfig {
    /// How far back the summary looks (default 24 h).
    pub window: Duration,
    /// The most records kept; the oldest go first (default 100,000, about 10 MB).
    pub max_records: usize,
    /// A key is problematic with at least this many operations … (default 5)
    pub min_operations: u64,
    /// … and a failure rate at or above this (default 0.5).
    pub failure_rate_threshold: f64,
    /// How many top failure reasons the summary lists (default 10).
    pub top_reasons: usize,
}

impl Default for FailureRecorderConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(24 * 3600),
            max_records: 100_000,
            min_operations: 5,
            failure_rate_threshold: 0.5,
            top_reasons: 10,
        }
    }
}

struct Record {
    at: SystemTime,
    operation: Operation,
    key: Option<KeyName>,
    failure: Option<ErrorKind>,
    duration: Duration,
}

/// A bounded rolling-window recorder; cheap to clone (shared state).
#[derive(Clone)]
pub struct FailureRecorder {
    config: FailureRecorderConfig,
    records: Arc<Mutex<VecDeque<Record>>>,
}

/// Counts and average duration of one operation with one status.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OperationStatusSummary {
    /// `get`, `store`, `remove`, `list`.
    pub operation: &'static str,
    /// `success` or `failure`.
    pub status: &'static str,
    /// How many.
    pub count: u64,
    /// Their average duration in milliseconds.
    pub avg_duration_ms: f64,
}

/// One failure reason and how often it happened.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FailureReason {
    /// The error kind label.
    pub reason: &'static str,
    /// How many failures.
    pub count: u64,
}

/// A key with many operations and a high failure rate.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ProblematicKey {
    /// The key name.
    pub key: String,
    /// Operations on it in the window.
    pub operations: u64,
    /// Of which failed.
    pub failures: u64,
    /// `failures / operations`.
    pub failure_rate: f64,
}

/// The failure summary over the window, serialisable to JSON.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FailureSummary {
    /// The window in seconds.
    pub window_seconds: u64,
    /// Operations recorded in the window.
    pub total_operations: u64,
    /// Per operation and status.
    pub by_operation: Vec<OperationStatusSummary>,
    /// Failure rate per operation (0..=1).
    pub failure_rate: BTreeMap<&'static str, f64>,
    /// Most frequent failure reasons first.
    pub top_failure_reasons: Vec<FailureReason>,
    /// Keys over the thresholds, worst first.
    pub problematic_keys: Vec<ProblematicKey>,
}

impl FailureRecorder {
    /// A recorder with `config`.
    pub fn new(config: FailureRecorderConfig) -> Self {
        Self {
            config,
            records: Arc::default(),
        }
    }

    /// Records one operation.
    pub fn record(
        &self,
        operation: Operation,
        key: Option<&KeyName>,
        failure: Option<ErrorKind>,
        duration: Duration,
    ) {
        self.record_at(SystemTime::now(), operation, key, failure, duration);
    }

    /// Records one operation at a given time (for replaying history and for tests).
    pub fn record_at(
        &self,
        at: SystemTime,
        operation: Operation,
        key: Option<&KeyName>,
        failure: Option<ErrorKind>,
        duration: Duration,
    ) {
        let mut records = self.records.lock();
        if records.len() >= self.config.max_records {
            records.pop_front();
        }
        records.push_back(Record {
            at,
            operation,
            key: key.cloned(),
            failure,
            duration,
        });
    }

    /// Records held now (at most `max_records`).
    pub fn len(&self) -> usize {
        self.records.lock().len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The summary of the window ending now; records older than the window are dropped.
    pub fn summary(&self) -> FailureSummary {
        self.summary_at(SystemTime::now())
    }

    /// The summary of the window ending at `now`.
    pub fn summary_at(&self, now: SystemTime) -> FailureSummary {
        let since = now
            .checked_sub(self.config.window)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut records = self.records.lock();
        while records.front().is_some_and(|r| r.at < since) {
            records.pop_front();
        }
        let mut by_op: BTreeMap<(&'static str, &'static str), (u64, Duration)> = BTreeMap::new();
        let mut reasons: HashMap<&'static str, u64> = HashMap::new();
        let mut keys: HashMap<&str, (u64, u64)> = HashMap::new();
        let mut total = 0;
        for r in records.iter().filter(|r| r.at <= now) {
            total += 1;
            let status = if r.failure.is_some() {
                "failure"
            } else {
                "success"
            };
            let e = by_op.entry((r.operation.as_str(), status)).or_default();
            e.0 += 1;
            e.1 += r.duration;
            if let Some(kind) = r.failure {
                *reasons.entry(kind.as_str()).or_default() += 1;
            }
            if let Some(key) = &r.key {
                let k = keys.entry(key.as_str()).or_default();
                k.0 += 1;
                k.1 += u64::from(r.failure.is_some());
            }
        }
        let mut failure_rate = BTreeMap::new();
        for op in ["get", "store", "remove", "list"] {
            let ok = by_op.get(&(op, "success")).map_or(0, |e| e.0);
            let failed = by_op.get(&(op, "failure")).map_or(0, |e| e.0);
            if ok + failed > 0 {
                failure_rate.insert(op, failed as f64 / (ok + failed) as f64);
            }
        }
        let mut top: Vec<FailureReason> = reasons
            .into_iter()
            .map(|(reason, count)| FailureReason { reason, count })
            .collect();
        top.sort_by(|a, b| b.count.cmp(&a.count).then(a.reason.cmp(b.reason)));
        top.truncate(self.config.top_reasons);
        let mut problematic: Vec<ProblematicKey> = keys
            .into_iter()
            .filter_map(|(key, (ops, failures))| {
                let rate = failures as f64 / ops as f64;
                (ops >= self.config.min_operations && rate >= self.config.failure_rate_threshold)
                    .then(|| ProblematicKey {
                        key: key.to_owned(),
                        operations: ops,
                        failures,
                        failure_rate: rate,
                    })
            })
            .collect();
        problematic.sort_by(|a, b| {
            b.failure_rate
                .total_cmp(&a.failure_rate)
                .then(a.key.cmp(&b.key))
        });
        FailureSummary {
            window_seconds: self.config.window.as_secs(),
            total_operations: total,
            by_operation: by_op
                .into_iter()
                .map(
                    |((operation, status), (count, sum))| OperationStatusSummary {
                        operation,
                        status,
                        count,
                        avg_duration_ms: sum.as_secs_f64() * 1000.0 / count as f64,
                    },
                )
                .collect(),
            failure_rate,
            top_failure_reasons: top,
            problematic_keys: problematic,
        }
    }

    /// The summary as JSON.
    pub fn summary_json(&self) -> String {
        serde_json::to_string_pretty(&self.summary()).expect("summaries serialise")
    }
}

impl std::fmt::Debug for FailureRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailureRecorder")
            .field("config", &self.config)
            .field("records", &self.len())
            .finish()
    }
}
