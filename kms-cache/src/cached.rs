//! [`Cached`]: the caching decorator.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kms_core::{
    Capabilities, Error, ErrorKind, KeyName, KeyPrefix, KeyStore, Result, SecretMeta, SecretValue,
    StoredSecret, async_trait,
};
use parking_lot::Mutex;
use quanta::{Clock, Instant};

use crate::config::CacheLayer;
use crate::entry::{Answer, Entry};
use crate::flight::Flight;
use crate::observer::{CacheStats, EvictionCause};
use crate::policy::{Index, Policy, Slot};
use crate::recorder::Recorder;

/// The state shared by a [`Cached`] store and its [`CacheHandle`](crate::CacheHandle)s.
pub(crate) struct Core {
    inner: Arc<dyn KeyStore>,
    /// What hits read: every cached entry, lock-free.
    index: Arc<Index>,
    /// What decides which entries stay (moka).
    policy: Policy,
    /// Loads in flight, by key. The lock also orders "insert a loaded value" against
    /// "invalidate", so a load that started before a write can never re-insert the old value.
    flights: Mutex<HashMap<KeyName, Arc<Flight>>>,
    recorder: Arc<Recorder>,
    clock: Clock,
    /// `clock` at creation: sweep times are kept as nanoseconds after it.
    base: Instant,
    next_id: AtomicU64,
    /// When the next expiry sweep is due (nanoseconds after `base`).
    next_sweep: AtomicU64,
    sweep_every: Duration,
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

/// An expired entry's answer that stale-if-error may still serve, until `until`.
pub(crate) struct Stale {
    secret: StoredSecret,
    until: Instant,
}

impl Core {
    pub(crate) fn new(inner: Arc<dyn KeyStore>, config: &CacheLayer) -> Arc<Self> {
        let recorder = Arc::new(Recorder::new(config.observer.clone()));
        let clock = config.clock.clone().unwrap_or_default();
        let index = Arc::new(
            papaya::HashMap::builder()
                .hasher(foldhash::fast::RandomState::default())
                .build(),
        );
        let policy = Policy::new(config, index.clone(), recorder.clone());
        Arc::new(Self {
            inner,
            index,
            policy,
            flights: Mutex::default(),
            recorder,
            base: clock.now(),
            clock,
            next_id: AtomicU64::new(0),
            next_sweep: AtomicU64::new(0),
            sweep_every: config
                .ttl
                .clamp(Duration::from_secs(1), Duration::from_secs(60)),
            ttl: config.ttl,
            tti: config.tti,
            jitter: config.jitter,
            refresh_ahead: config.refresh_ahead,
            max_stale: config.max_stale,
            negative_ttl: config.negative_ttl,
        })
    }

    /// The hit path, synchronous: one lock-free index read, one clock read, one per-thread
    /// counter, and a clone of the answer. `Err` is a miss, with what stale-if-error may serve
    /// in the meantime; nothing is counted then.
    #[inline]
    fn lookup(
        self: &Arc<Self>,
        key: &KeyName,
    ) -> std::result::Result<Result<StoredSecret>, Option<Stale>> {
        let index = self.index.pin();
        let Some(entry) = index.get(key) else {
            return Err(None);
        };
        let now = self.clock.now();
        if !entry.is_fresh(now, self.tti) {
            return Err(self.stale_candidate(entry, now));
        }
        self.recorder.hit();
        self.policy.on_hit(key);
        record_outcome("hit");
        if self.refresh_ahead.is_some() {
            self.maybe_refresh_ahead(key, entry, now);
        }
        Ok(match &entry.answer {
            Answer::Found(secret) => Ok(secret.clone()),
            Answer::Missing => Err(Error::not_found(key)),
        })
    }

    /// What stale-if-error could serve from `entry`, expired at `now`.
    #[cold]
    fn stale_candidate(&self, entry: &Entry, now: Instant) -> Option<Stale> {
        match (&entry.answer, self.max_stale) {
            (Answer::Found(secret), Some(_)) if now < entry.stale_until => Some(Stale {
                secret: secret.clone(),
                until: entry.stale_until,
            }),
            _ => None,
        }
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
            Err(stale) => Box::pin(self.get_slow(key, stale)).await,
        }
    }

    /// A miss: joins or starts the load of `key`; stale-if-error may serve `stale`.
    async fn get_slow(&self, key: &KeyName, stale: Option<Stale>) -> Result<StoredSecret> {
        self.recorder.miss();
        self.policy.on_miss(key);
        match self.load(key).await {
            Ok(secret) => {
                record_outcome("miss");
                Ok(secret)
            }
            Err(err) => {
                let result = self.stale_if_error(stale, err);
                // `stale_if_error` answers `Ok` only when it serves a stale value.
                record_outcome(if result.is_ok() { "stale" } else { "miss" });
                result
            }
        }
    }

    fn stale_if_error(&self, stale: Option<Stale>, err: Error) -> Result<StoredSecret> {
        let transient = matches!(
            err.kind(),
            ErrorKind::Unavailable
                | ErrorKind::Timeout
                | ErrorKind::RateLimited
                | ErrorKind::CircuitOpen
        );
        if let (true, Some(stale)) = (transient, stale)
            && self.clock.now() < stale.until
        {
            self.recorder.stale_serve();
            return Ok(stale.secret);
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
        if entry.refreshing.swap(true, Ordering::AcqRel) {
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
        let now = self.clock.now();
        let answer = match result {
            Ok(secret) => Some((Answer::Found(secret.clone()), self.jittered_ttl())),
            Err(e) if e.is_not_found() => self.negative_ttl.map(|ttl| (Answer::Missing, ttl)),
            Err(_) => None,
        };
        let mut flights = self.flights.lock();
        if !flight.is_superseded()
            && let Some((answer, fresh_for)) = answer
        {
            let max_stale = self.max_stale.unwrap_or_default();
            let mut entry = Entry::new(answer, key, now, fresh_for, max_stale);
            let index = self.index.pin();
            let old = index.get(key);
            if old.is_some_and(|old| now >= old.expires_at) {
                // The reload of an expired entry is that entry expiring.
                self.recorder.eviction(EvictionCause::Expired);
            }
            // A reload of the same weight keeps its policy slot: nothing to tell moka.
            let kept = old
                .filter(|old| old.weight == entry.weight)
                .map(|old| old.id);
            entry.id = kept.unwrap_or_else(|| self.next_id.fetch_add(1, Ordering::Relaxed));
            let slot = Slot::of(&entry);
            // Index first: when moka hears of the entry, it is there to be evicted.
            index.insert(key.clone(), entry);
            if kept.is_none() {
                self.policy.admit(key, slot);
            }
        }
        if flights.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            flights.remove(key);
        }
        drop(flights);
        self.maybe_sweep(now);
        self.push_size();
    }

    /// Every `sweep_every` at most, on the miss path: removes the entries past any use (expired
    /// and past their stale window), so a secret nobody reads again does not stay in memory.
    fn maybe_sweep(&self, now: Instant) {
        let at = now.saturating_duration_since(self.base).as_nanos() as u64;
        let due = self.next_sweep.load(Ordering::Relaxed);
        let next = at + self.sweep_every.as_nanos() as u64;
        if at < due
            || self
                .next_sweep
                .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        // Under the flight lock, like every insert: a key swept here cannot have been
        // reloaded in between, so its policy slot goes with it.
        let _flights = self.flights.lock();
        let index = self.index.pin();
        let dead: Vec<KeyName> = index
            .iter()
            .filter(|(_, e)| now >= e.stale_until)
            .map(|(k, _)| k.clone())
            .collect();
        for key in dead {
            if let Ok(Some(_)) = index.remove_if(&key, |_, e| now >= e.stale_until) {
                self.policy.remove(&key);
                self.recorder.eviction(EvictionCause::Expired);
            }
        }
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
        if self.index.pin().remove(key).is_some() {
            self.recorder.eviction(EvictionCause::Explicit);
        }
        self.policy.remove(key);
        drop(flights);
        self.push_size();
    }

    pub(crate) fn invalidate_all(&self) {
        let mut flights = self.flights.lock();
        for (_, flight) in flights.drain() {
            flight.supersede();
        }
        let mut removed = 0;
        self.index.pin().retain(|_, _| {
            removed += 1;
            false
        });
        for _ in 0..removed {
            self.recorder.eviction(EvictionCause::Explicit);
        }
        self.policy.clear();
        drop(flights);
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
        let (entries, bytes) = self.policy.settle();
        self.recorder.size(entries, bytes);
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let (entries, bytes) = self.policy.settle();
        self.recorder.snapshot(entries, bytes)
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
            .field("entries", &self.core.policy.approximate_len())
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
