//! [`Cached`]: the caching decorator.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use kms_core::{
    Capabilities, Error, ErrorKind, KeyName, KeyPrefix, KeyStore, Result, SecretMeta, SecretValue,
    StoredSecret, async_trait,
};
use moka::notification::RemovalCause;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::config::{CacheLayer, Capacity};
use crate::entry::{Answer, Entry};
use crate::flight::Flight;
use crate::observer::{CacheStats, EvictionCause};
use crate::recorder::Recorder;

/// The state shared by a [`Cached`] store and its [`CacheHandle`](crate::CacheHandle)s.
pub(crate) struct Core {
    inner: Arc<dyn KeyStore>,
    entries: moka::sync::Cache<KeyName, Entry, foldhash::fast::RandomState>,
    /// Loads in flight, by key. The lock also orders "insert a loaded value" against
    /// "invalidate", so a load that started before a write can never re-insert the old value.
    flights: Mutex<HashMap<KeyName, Arc<Flight>>>,
    recorder: Arc<Recorder>,
    ttl: Duration,
    tti: Option<Duration>,
    jitter: f64,
    refresh_ahead: Option<f64>,
    max_stale: Option<Duration>,
    negative_ttl: Option<Duration>,
}

/// The span field a `get` records its cache outcome into (see the crate docs).
const SPAN_FIELD: &str = "cache";

/// Records `outcome` into the current span's `cache` field; a no-op when no subscriber is
/// installed or the span does not declare the field.
#[inline]
fn record_outcome(outcome: &'static str) {
    if tracing::dispatcher::has_been_set() {
        tracing::Span::current().record(SPAN_FIELD, outcome);
    }
}

fn eviction_cause(cause: RemovalCause, entry: &Entry) -> Option<EvictionCause> {
    match cause {
        RemovalCause::Expired => Some(EvictionCause::Expired),
        RemovalCause::Size => Some(EvictionCause::Size),
        RemovalCause::Explicit => Some(EvictionCause::Explicit),
        // A reload replacing an expired entry is that entry expiring; a refresh-ahead
        // replacing a fresh one is not an eviction.
        RemovalCause::Replaced => {
            (Instant::now() >= entry.expires_at).then_some(EvictionCause::Expired)
        }
    }
}

impl Core {
    pub(crate) fn new(inner: Arc<dyn KeyStore>, config: &CacheLayer) -> Arc<Self> {
        let recorder = Arc::new(Recorder::new(config.observer.clone()));
        let listener_recorder = recorder.clone();
        let max_stale = config.max_stale.unwrap_or_default();
        // moka's own expiry is only a backstop that frees memory once an entry is of no use
        // (past its TTL and its stale window); freshness is decided on read with tokio's clock.
        let backstop = config.ttl.max(config.negative_ttl.unwrap_or_default())
            + max_stale
            + Duration::from_secs(1);
        let mut builder = moka::sync::Cache::builder()
            .time_to_live(backstop)
            .eviction_listener(move |_key, entry: Entry, cause| {
                // Never logs: keys and values stay out of the listener's output.
                if let Some(cause) = eviction_cause(cause, &entry) {
                    listener_recorder.eviction(cause);
                }
            });
        builder = match config.capacity {
            Capacity::Entries(n) => builder.max_capacity(n),
            Capacity::Bytes(n) => builder
                .max_capacity(n)
                .weigher(|key: &KeyName, entry: &Entry| entry.weight(key.as_str().len())),
        };
        // foldhash instead of SipHash: several times cheaper on short keys, and still seeded
        // per cache from a random per-process seed, so key collisions cannot be precomputed.
        let entries = builder.build_with_hasher(foldhash::fast::RandomState::default());
        Arc::new(Self {
            inner,
            entries,
            flights: Mutex::default(),
            recorder,
            ttl: config.ttl,
            tti: config.tti,
            jitter: config.jitter,
            refresh_ahead: config.refresh_ahead,
            max_stale: config.max_stale,
            negative_ttl: config.negative_ttl,
        })
    }

    /// The hit path, synchronous: one moka lookup (its clone of the entry is the answer), one
    /// clock read, one per-thread counter. `Err` hands back the entry found, if any, for the
    /// miss path (stale-if-error may serve it); nothing is counted then.
    #[inline]
    fn lookup(
        self: &Arc<Self>,
        key: &KeyName,
    ) -> std::result::Result<Result<StoredSecret>, Option<Entry>> {
        let Some(entry) = self.entries.get(key) else {
            return Err(None);
        };
        let now = Instant::now();
        if !entry.is_fresh(now, self.tti) {
            return Err(Some(entry));
        }
        self.recorder.hit();
        record_outcome("hit");
        if self.refresh_ahead.is_some() {
            self.maybe_refresh_ahead(key, &entry, now);
        }
        Ok(match entry.answer {
            Answer::Found(secret) => Ok(secret),
            Answer::Missing => Err(Error::not_found(key)),
        })
    }

    /// A hit, answered at once; `None` on anything else (see [`KeyStore::get_now`]).
    #[inline]
    pub(crate) fn get_now(self: &Arc<Self>, key: &KeyName) -> Option<Result<StoredSecret>> {
        self.lookup(key).ok()
    }

    /// The read path: a fresh entry is a hit; anything else is a miss that joins or starts
    /// one load.
    #[inline]
    async fn get(self: &Arc<Self>, key: &KeyName) -> Result<StoredSecret> {
        match self.lookup(key) {
            Ok(hit) => hit,
            // Boxed so the hit path's future stays small.
            Err(found) => Box::pin(self.get_slow(key, found)).await,
        }
    }

    /// A miss: joins or starts the load of `key`; stale-if-error may serve `found`.
    async fn get_slow(&self, key: &KeyName, found: Option<Entry>) -> Result<StoredSecret> {
        self.recorder.miss();
        match self.load(key).await {
            Ok(secret) => {
                record_outcome("miss");
                Ok(secret)
            }
            Err(err) => {
                let result = self.stale_if_error(found, err);
                // `stale_if_error` answers `Ok` only when it serves a stale value.
                record_outcome(if result.is_ok() { "stale" } else { "miss" });
                result
            }
        }
    }

    fn stale_if_error(&self, found: Option<Entry>, err: Error) -> Result<StoredSecret> {
        let transient = matches!(
            err.kind(),
            ErrorKind::Unavailable
                | ErrorKind::Timeout
                | ErrorKind::RateLimited
                | ErrorKind::CircuitOpen
        );
        if let (true, Some(_), Some(entry)) = (transient, self.max_stale, found)
            && let Answer::Found(secret) = &entry.answer
            && Instant::now() < entry.stale_until
        {
            self.recorder.stale_serve();
            return Ok(secret.clone());
        }
        Err(err)
    }

    fn maybe_refresh_ahead(self: &Arc<Self>, key: &KeyName, entry: &Entry, now: Instant) {
        let Some(fraction) = self.refresh_ahead else {
            return;
        };
        let lifetime = entry.expires_at.saturating_duration_since(entry.loaded_at);
        if now.saturating_duration_since(entry.loaded_at) < lifetime.mul_f64(fraction) {
            return;
        }
        let Some(shared) = &entry.shared else {
            return;
        };
        if shared
            .refreshing
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        let (core, key) = (self.clone(), key.clone());
        tokio::spawn(async move {
            // The result is cached by `load`; a failure leaves the current entry to expire.
            let _ = core.load(&key).await;
        });
    }

    /// Joins the load of `key` in flight, or starts one.
    async fn load(&self, key: &KeyName) -> Result<StoredSecret> {
        let flight = self.flights.lock().entry(key.clone()).or_default().clone();
        flight
            .result
            .get_or_init(|| async {
                let result = self.inner.get(key).await;
                self.recorder
                    .load(result.is_ok() || result.as_ref().is_err_and(Error::is_not_found));
                self.finish(key, &flight, &result);
                result
            })
            .await
            .clone()
    }

    /// Caches a load's result (unless a write superseded it) and retires its flight.
    fn finish(&self, key: &KeyName, flight: &Arc<Flight>, result: &Result<StoredSecret>) {
        let now = Instant::now();
        let answer = match result {
            Ok(secret) => Some((Answer::Found(secret.clone()), self.jittered_ttl())),
            Err(e) if e.is_not_found() => self.negative_ttl.map(|ttl| (Answer::Missing, ttl)),
            Err(_) => None,
        };
        let mut flights = self.flights.lock();
        if !flight.is_superseded()
            && let Some((answer, fresh_for)) = answer
        {
            let shared = self.tti.is_some() || self.refresh_ahead.is_some();
            let max_stale = self.max_stale.unwrap_or_default();
            let entry = Entry::new(answer, now, fresh_for, max_stale, shared);
            self.entries.insert(key.clone(), entry);
        }
        if flights.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            flights.remove(key);
        }
        drop(flights);
        self.push_size();
    }

    fn jittered_ttl(&self) -> Duration {
        if self.jitter <= 0.0 {
            return self.ttl;
        }
        self.ttl.mul_f64(1.0 - self.jitter * fastrand::f64())
    }

    /// Removes `key` and supersedes any load of it in flight.
    pub(crate) fn invalidate(&self, key: &KeyName) {
        let mut flights = self.flights.lock();
        if let Some(flight) = flights.remove(key) {
            flight.supersede();
        }
        self.entries.invalidate(key);
        drop(flights);
        self.push_size();
    }

    pub(crate) fn invalidate_all(&self) {
        let mut flights = self.flights.lock();
        for (_, flight) in flights.drain() {
            flight.supersede();
        }
        self.entries.invalidate_all();
        drop(flights);
        self.entries.run_pending_tasks();
        self.push_size();
    }

    pub(crate) async fn refresh(&self, key: &KeyName) -> Result<StoredSecret> {
        self.invalidate(key);
        self.load(key).await
    }

    fn push_size(&self) {
        if !self.recorder.has_observer() {
            return;
        }
        // moka counts lazily; settle its pending work so the pushed size is exact (this runs on
        // the miss and write paths only, never on a hit).
        self.entries.run_pending_tasks();
        self.recorder
            .size(self.entries.entry_count(), self.entries.weighted_size());
    }

    pub(crate) fn stats(&self) -> CacheStats {
        self.entries.run_pending_tasks();
        self.recorder
            .snapshot(self.entries.entry_count(), self.entries.weighted_size())
    }
}

/// The caching decorator [`CacheLayer`] builds; see the [crate docs](crate).
///
/// `Display` is `Cache(<inner>)`; `backend()` and `capabilities()` are the inner store's.
pub struct Cached {
    core: Arc<Core>,
}

impl Cached {
    pub(crate) fn from_core(core: Arc<Core>) -> Self {
        Self { core }
    }

    /// A handle to this cache (invalidate, refresh, stats).
    pub fn handle(&self) -> crate::CacheHandle {
        crate::CacheHandle::from_core(self.core.clone())
    }
}

impl fmt::Display for Cached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cache({})", self.core.inner)
    }
}

impl fmt::Debug for Cached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cached")
            .field("inner", &format_args!("{}", self.core.inner))
            .field("entries", &self.core.entries.entry_count())
            .field("ttl", &self.core.ttl)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl KeyStore for Cached {
    fn backend(&self) -> &'static str {
        self.core.inner.backend()
    }

    fn capabilities(&self) -> Capabilities {
        self.core.inner.capabilities()
    }

    fn get_now(&self, key: &KeyName) -> Option<Result<StoredSecret>> {
        self.core.get_now(key)
    }

    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        self.core.get(key).await
    }

    /// Not cached: versioned reads are rare (rotation grace, audits) and go to the backend.
    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        self.core.inner.get_version(key, version).await
    }

    /// Writes through, then invalidates `key` (also when the write fails: a write that timed
    /// out may still have landed).
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        let result = self.core.inner.store(key, value).await;
        self.core.invalidate(key);
        result
    }

    /// Removes through, then invalidates `key`.
    async fn remove(&self, key: &KeyName) -> Result<()> {
        let result = self.core.inner.remove(key).await;
        self.core.invalidate(key);
        result
    }

    /// Passed through, never cached: a listing must reflect keys written by other processes,
    /// and caching it would need every write anywhere under a prefix to invalidate it.
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        self.core.inner.list(prefix).await
    }

    async fn health(&self) -> Result<()> {
        self.core.inner.health().await
    }
}
