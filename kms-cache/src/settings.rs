//! The cache's settings: plain values, their defaults and their validation. A leaf: the layer
//! fills them in, the engine reads them.

use std::sync::Arc;
use std::time::Duration;

use kms_core::{Error, HealthSignal, Result};

use crate::observer::CacheObserver;

/// Default time-to-live: 5 minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// Default downward TTL jitter: up to 10 % shorter.
pub const DEFAULT_JITTER: f64 = 0.1;
/// Default bound on entries.
pub const DEFAULT_MAX_ENTRIES: u64 = 10_000;
/// Default bound on one load from the inner store: 30 seconds.
pub const DEFAULT_LOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Default stale-while-revalidate wait: 100 milliseconds.
pub const DEFAULT_STALE_WAIT: Duration = Duration::from_millis(100);

/// Default shortest time between two forced refreshes of one key on rejection reports:
/// 30 seconds (JWKS verifiers rate-limit their forced refetches to 30–60 s).
pub const DEFAULT_REJECTION_RATE_LIMIT: Duration = Duration::from_secs(30);
/// Default budget a forced refresh keeps retrying in while the backend still answers the
/// refused version: 90 seconds, covering the window of an AWS Secrets Manager single-user
/// rotation in which the database password has changed but `AWSCURRENT` has not moved yet.
pub const DEFAULT_REJECTION_RETRY_BUDGET: Duration = Duration::from_secs(90);
/// The longest rejection retry budget accepted: 15 minutes, the longest an AWS rotation
/// Lambda invocation runs (a step of a rotation cannot keep the old version current longer).
pub const MAX_REJECTION_RETRY_BUDGET: Duration = Duration::from_secs(15 * 60);

/// The longest duration the cache adds to its clock: 100 years. Longer settings (up to
/// `Duration::MAX`, "never expire") mean the same and are capped to it, so an entry's times
/// (load + TTL + stale window) stay well inside the clock's 584 years of nanoseconds.
const LONGEST: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// `d`, capped at [`LONGEST`].
pub(crate) fn capped(d: Duration) -> Duration {
    d.min(LONGEST)
}

/// How the cache is bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capacity {
    /// At most this many entries.
    Entries(u64),
    /// At most this many bytes of key names and secret values (a weigher on secret size).
    Bytes(u64),
}

/// Every setting of one cache, as the user gave them (see
/// [`CacheLayer`](crate::CacheLayer)'s methods for what each means).
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) ttl: Duration,
    pub(crate) tti: Option<Duration>,
    pub(crate) jitter: f64,
    pub(crate) capacity: Capacity,
    pub(crate) refresh_ahead: Option<f64>,
    pub(crate) max_stale: Option<Duration>,
    pub(crate) negative_ttl: Option<Duration>,
    pub(crate) observer: Option<Arc<dyn CacheObserver>>,
    pub(crate) clock: Option<quanta::Clock>,
    pub(crate) load_timeout: Duration,
    pub(crate) stale_wait: Duration,
    pub(crate) signal: Option<HealthSignal>,
    pub(crate) rejection_rate_limit: Duration,
    pub(crate) rejection_retry_budget: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_TTL,
            tti: None,
            jitter: DEFAULT_JITTER,
            capacity: Capacity::Entries(DEFAULT_MAX_ENTRIES),
            refresh_ahead: None,
            max_stale: None,
            negative_ttl: None,
            observer: None,
            clock: None,
            load_timeout: DEFAULT_LOAD_TIMEOUT,
            stale_wait: DEFAULT_STALE_WAIT,
            signal: None,
            rejection_rate_limit: DEFAULT_REJECTION_RATE_LIMIT,
            rejection_retry_budget: DEFAULT_REJECTION_RETRY_BUDGET,
        }
    }
}

impl Settings {
    /// Durations longer than zero, `jitter` in `0.0..=0.9`, `refresh_ahead` in `(0, 1]`, a
    /// capacity of at least one entry or byte, a rejection retry budget of at most
    /// [`MAX_REJECTION_RETRY_BUDGET`]; the error names the first bad setting.
    pub(crate) fn validate(&self) -> Result<()> {
        let positive = |setting: &str, d: Option<Duration>| match d {
            Some(d) if d.is_zero() => {
                Err(Error::configuration(setting, "must be longer than zero"))
            }
            _ => Ok(()),
        };
        positive("ttl", Some(self.ttl))?;
        positive("time_to_idle", self.tti)?;
        positive("stale_if_error", self.max_stale)?;
        positive("negative_ttl", self.negative_ttl)?;
        positive("load_timeout", Some(self.load_timeout))?;
        positive("rejection_rate_limit", Some(self.rejection_rate_limit))?;
        if self.rejection_retry_budget > MAX_REJECTION_RETRY_BUDGET {
            return Err(Error::configuration(
                "rejection_retry_budget",
                format!(
                    "{:?} is longer than {:?}, the longest a rotation step runs",
                    self.rejection_retry_budget, MAX_REJECTION_RETRY_BUDGET
                ),
            ));
        }
        if !(0.0..=0.9).contains(&self.jitter) {
            return Err(Error::configuration(
                "jitter",
                format!("{} is not in 0.0..=0.9", self.jitter),
            ));
        }
        if let Some(fraction) = self.refresh_ahead
            && !(fraction > 0.0 && fraction <= 1.0)
        {
            return Err(Error::configuration(
                "refresh_ahead",
                format!("{fraction} is not in (0, 1]"),
            ));
        }
        if matches!(self.capacity, Capacity::Entries(0) | Capacity::Bytes(0)) {
            return Err(Error::configuration("capacity", "must be more than zero"));
        }
        Ok(())
    }
}
