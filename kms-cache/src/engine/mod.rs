//! The engine: the read index and moka's eviction policy, single-flight loads, expiry, the
//! stale decisions, the counters and the observer. [`Core`] is shared by the
//! [`Cached`](crate::Cached) decorator, which delegates every call to it, and the
//! [`CacheHandle`](crate::CacheHandle)s that control it.

mod entry;
mod flight;
mod peek;
mod policy;
mod recorder;
mod rejections;
mod span;
mod unwind;

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::panic::catch_unwind;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use kms_core::{Error, ErrorKind, HealthSignal, KeyName, KeyStore, Result, StoredSecret};
use parking_lot::Mutex;
use quanta::{Clock, Instant};
use tokio::runtime::Handle;

use self::entry::{Answer, Entry};
use self::flight::{Flight, Wait};
use self::policy::{Index, Policy, Slot};
use self::recorder::Recorder;
use self::rejections::{Decision, Forced, Rejections};
use self::span::record_outcome;
use self::unwind::unwind_safe;
use crate::observer::{CacheStats, EvictionCause};
use crate::rejection::Rejection;
use crate::settings::{Settings, capped};

/// The cache itself, shared by a [`Cached`](crate::Cached) store and its
/// [`CacheHandle`](crate::CacheHandle)s.
pub(crate) struct Core {
    inner: Arc<dyn KeyStore>,
    /// The configuration error every call answers with, if the settings were invalid.
    refused: Option<Error>,
    /// What hits read: every cached entry, lock-free.
    index: Arc<Index>,
    /// What decides which entries stay (moka).
    policy: Policy,
    /// Loads in flight, by key. The lock also orders "insert a loaded value" against
    /// "invalidate", so a load that started before a write can never re-insert the old value.
    flights: Mutex<HashMap<KeyName, Arc<Flight>>>,
    /// Keys whose last write through the cache failed or was dropped, until when (see
    /// [`Core::unsettle`]): their loads are answered but not cached meanwhile. Locked only
    /// under `flights`, so a load's insert and a write's end are ordered.
    unsettled: Mutex<HashMap<KeyName, Instant>>,
    recorder: Arc<Recorder>,
    clock: Clock,
    /// `clock` at creation: sweep times are kept as nanoseconds after it.
    base: Instant,
    /// The Tokio runtime the cache was built in: loads and refresh-ahead reloads run on it,
    /// detached from their callers. `None` outside any runtime: loads then run in the caller.
    runtime: Option<Handle>,
    /// Whether that runtime has timers (the load timeout and the stale wait need them).
    timers: bool,
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
    load_timeout: Duration,
    stale_wait: Duration,
    /// What the layer watching the backend knows: while it says down, stale reads are
    /// answered at once (see [`Core::get_slow`]).
    signal: Option<HealthSignal>,
    /// Versions reported refused downstream and being refreshed, and the rate limit.
    rejections: Rejections,
    /// How long a forced refresh keeps retrying while the backend answers the refused version.
    rejection_retry_budget: Duration,
}

/// The first wait of a forced refresh between two reads that still answered the refused
/// version; each next wait doubles, up to [`REJECTION_BACKOFF_MAX`], and each is shortened by
/// a random fraction of up to a half, so a fleet does not retry in lockstep.
const REJECTION_BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two reads of a forced refresh.
const REJECTION_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Ends a forced refresh exactly once: with its outcome, or, if it is dropped before it ends
/// (its reporter left, in a cache without a runtime; its runtime shut down), as a
/// [`ErrorKind::Timeout`] failure, so the reports waiting for it are answered and the refused
/// version may be cached again.
struct ForcedGuard {
    core: Arc<Core>,
    key: KeyName,
    forced: Arc<Forced>,
    ended: bool,
}

impl ForcedGuard {
    fn end(mut self, outcome: Rejection) {
        self.ended = true;
        self.core.end_forced(&self.key, &self.forced, outcome);
    }
}

impl Drop for ForcedGuard {
    fn drop(&mut self) {
        if !self.ended {
            self.core.end_forced(
                &self.key,
                &self.forced,
                Rejection::Failed(ErrorKind::Timeout),
            );
        }
    }
}

/// Whether `handle`'s runtime has its time driver enabled: creating a timer panics otherwise,
/// and Tokio has no other way to ask.
fn has_timers(handle: &Handle) -> bool {
    let _entered = handle.enter();
    catch_unwind(|| drop(tokio::time::sleep(Duration::ZERO))).is_ok()
}

/// How a miss's wait for a load ended.
enum Loaded {
    Done(Result<StoredSecret>),
    /// Still loading after the stale-while-revalidate wait.
    StillLoading,
}

/// Settles a flight exactly once: by [`Core::finish`], or, if the load is dropped before it
/// ends (its caller left, without a runtime; its runtime shut down), by abandoning it so its
/// bookkeeping is freed and a waiter starts another.
struct LoadGuard {
    core: Arc<Core>,
    key: KeyName,
    flight: Arc<Flight>,
    settled: bool,
}

impl LoadGuard {
    fn finish(mut self, result: Result<StoredSecret>) {
        // Settled only once `finish` has returned: if it panics half-way (a user's observer),
        // the drop below still releases the waiters and frees the bookkeeping.
        self.core.finish(&self.key, &self.flight, result);
        self.settled = true;
    }
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        if !self.settled {
            self.core.retire(&self.key, &self.flight);
            self.flight.abandon();
        }
    }
}

/// What a write whose outcome is unknown does to the value the cache holds for its key (see
/// [`Core::unsettle`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fallback {
    /// A `store`: the old value is no longer fresh and is not served stale until the write
    /// has landed or never will; then it is a stale fallback again, like any expired value.
    Withhold,
    /// A `remove`: the old value is dropped. The caller meant it never to be served again,
    /// and serving it after a removal that landed would resurrect a deleted secret.
    Drop,
}

/// Settles a key once the write through the cache is over, whatever way it ends: created
/// before the write's first await, so a write dropped by its caller (a timeout above, a
/// `select!`, a disconnected client) is seen too: it may have landed.
struct WriteGuard<'a> {
    core: &'a Core,
    key: &'a KeyName,
    fallback: Fallback,
}

impl WriteGuard<'_> {
    /// The write ended with `result`:
    ///
    /// - a failure that proves nothing was applied ([`Error::proves_not_applied`]: refused
    ///   before it reached the backend, a sealed Vault, a connection refused before the
    ///   request was sent, rate limited, denied, a check-and-set conflict …) changed nothing,
    ///   so the cache stays as it was, its stale fallback included;
    /// - a success invalidates the key;
    /// - any other failure leaves the outcome unknown: the write may still land later (it
    ///   was on the wire, or the backend runs it to completion), so the key is unsettled
    ///   (see [`Core::unsettle`]).
    fn settle<T>(self, result: &Result<T>) {
        match result {
            Err(e) if e.proves_not_applied() => {}
            Ok(_) => self.core.invalidate(self.key),
            Err(_) => self.core.unsettle(self.key, self.fallback),
        }
        std::mem::forget(self);
    }
}

impl Drop for WriteGuard<'_> {
    /// Dropped by its caller: the write may have landed, or land later.
    fn drop(&mut self) {
        self.core.unsettle(self.key, self.fallback);
    }
}

impl Core {
    pub(crate) fn new(inner: Arc<dyn KeyStore>, settings: &Settings) -> Arc<Self> {
        let recorder = Arc::new(Recorder::new(settings.observer.clone()));
        let clock = settings.clock.clone().unwrap_or_default();
        let index = Arc::new(
            papaya::HashMap::builder()
                .hasher(foldhash::fast::RandomState::default())
                .build(),
        );
        let refused = settings.validate().err();
        let policy = Policy::new(settings, index.clone(), recorder.clone());
        let runtime = Handle::try_current().ok();
        let timers = runtime.as_ref().is_some_and(has_timers);
        Arc::new(Self {
            inner,
            refused,
            index,
            policy,
            flights: Mutex::default(),
            unsettled: Mutex::default(),
            recorder,
            base: clock.now(),
            clock,
            runtime,
            timers,
            next_id: AtomicU64::new(0),
            next_sweep: AtomicU64::new(0),
            sweep_every: settings
                .ttl
                .clamp(Duration::from_secs(1), Duration::from_secs(60)),
            ttl: capped(settings.ttl),
            tti: settings.tti.map(capped),
            jitter: settings.jitter,
            refresh_ahead: settings.refresh_ahead,
            max_stale: settings.max_stale.map(capped),
            negative_ttl: settings.negative_ttl.map(capped),
            load_timeout: capped(settings.load_timeout),
            stale_wait: settings.stale_wait,
            signal: settings.signal.clone(),
            rejections: Rejections::new(settings.rejection_rate_limit),
            rejection_retry_budget: settings.rejection_retry_budget,
        })
    }

    /// The store this cache wraps.
    pub(crate) fn inner(&self) -> &dyn KeyStore {
        &*self.inner
    }

    /// The time-to-live before jitter (capped at 100 years).
    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The entry count, possibly lagging behind moka's pending work.
    pub(crate) fn approximate_len(&self) -> u64 {
        self.policy.approximate_len()
    }

    /// `Ok`, or the configuration error every call answers with if the settings were invalid.
    pub(crate) fn check(&self) -> Result<()> {
        match &self.refused {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    /// Runs `write` (a `store`, `store_if_version` or `remove` of `key` on the inner store)
    /// through the cache: invalidates `key` when it succeeds; leaves the cache as it was when
    /// its failure proves nothing was applied ([`Error::proves_not_applied`]); unsettles `key`
    /// with `fallback` when its outcome is unknown (it failed otherwise, or was dropped by its
    /// caller: it may still have landed). See [`WriteGuard`].
    pub(crate) async fn write_through<'a, T, F>(
        &'a self,
        key: &'a KeyName,
        fallback: Fallback,
        write: impl FnOnce(&'a dyn KeyStore) -> F,
    ) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        self.check()?;
        // Made before the write's first await, so a write dropped by its caller is seen too.
        let guard = WriteGuard {
            core: self,
            key,
            fallback,
        };
        let result = write(self.inner()).await;
        guard.settle(&result);
        result
    }

    /// The hit path, synchronous: one lock-free index read, one clock read, one per-thread
    /// counter, and a clone of the answer. `Err` is a miss, saying whether stale-if-error has
    /// a value to serve in the meantime; nothing is counted then.
    #[inline]
    fn lookup(self: &Arc<Self>, key: &KeyName) -> std::result::Result<Result<StoredSecret>, bool> {
        let index = self.index.pin();
        let Some(entry) = index.get(key) else {
            return Err(false);
        };
        let now = self.clock.now();
        if !entry.is_fresh(now, self.tti) {
            return Err(self.max_stale.is_some() && self.servable(entry, now));
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

    /// Whether stale-if-error may serve `entry` at `now`.
    fn servable(&self, entry: &Entry, now: Instant) -> bool {
        matches!(entry.answer, Answer::Found(_))
            && entry.stale_from <= now
            && now < entry.stale_until
    }

    /// What stale-if-error may serve for `key` now, with how long it has been expired: read
    /// at decision time, not before the load, so a value a write invalidated or withheld, or
    /// the backend said is gone, in the meantime is never served.
    fn stale(&self, key: &KeyName) -> Option<(StoredSecret, Duration)> {
        self.max_stale?;
        let index = self.index.pin();
        let entry = index.get(key)?;
        let now = self.clock.now();
        match &entry.answer {
            Answer::Found(secret) if self.servable(entry, now) => Some((
                secret.clone(),
                now.saturating_duration_since(entry.expires_at),
            )),
            _ => None,
        }
    }

    /// Serves `key`'s stale value, if stale-if-error has one now, and counts it.
    fn serve_stale(&self, key: &KeyName) -> Option<StoredSecret> {
        let (secret, expired_for) = self.stale(key)?;
        self.recorder.stale_serve(expired_for);
        record_outcome("stale");
        Some(secret)
    }

    /// Whether the layer watching the backend says it is down now.
    fn backend_down(&self) -> bool {
        self.signal.as_ref().is_some_and(HealthSignal::is_down)
    }

    /// A hit, answered at once; `None` on anything else (see [`KeyStore::get_now`]).
    #[inline]
    pub(crate) fn get_now(self: &Arc<Self>, key: &KeyName) -> Option<Result<StoredSecret>> {
        self.lookup(key).ok()
    }

    /// The read path: a fresh entry is a hit; anything else is a miss that joins or starts
    /// one load.
    #[inline]
    pub(crate) async fn get(self: &Arc<Self>, key: &KeyName) -> Result<StoredSecret> {
        // The lookup's answer is dropped before the await: a `match` scrutinee would live
        // across it and put a whole `StoredSecret` into this future, which every `get` moves
        // into the box `KeyStore::get` returns (past 128 bytes, that move is a `memcpy` call).
        let stale = match self.lookup(key) {
            Ok(hit) => return hit,
            Err(stale) => stale,
        };
        // Boxed so the hit path's future stays small.
        Box::pin(self.get_slow(key, stale)).await
    }

    /// A miss: joins or starts the load of `key`; stale-if-error may serve a stale value when
    /// the load fails, or (stale-while-revalidate) when it has not answered within the stale
    /// wait and `stale` said there was one. While the health signal says the backend is down,
    /// such a value is served at once and the load runs in the background.
    async fn get_slow(self: &Arc<Self>, key: &KeyName, stale: bool) -> Result<StoredSecret> {
        self.check()?;
        self.recorder.miss();
        self.policy.on_miss(key);
        if let Some(refused) = self.rejections.latest(key) {
            // A forced refresh runs and the backend still answers the refused version: its
            // last read's answer, without a read of this reader's own (see `report_rejected`).
            record_outcome("miss");
            return Ok(refused);
        }
        if stale
            && let Some(runtime) = &self.runtime
            && self.backend_down()
        {
            // The reload cannot succeed while the backend is down: no wait for it. It still
            // runs (joined if one is in flight: one per key), detached, so the value is
            // refreshed, and the backend seen answering, as soon as it can be.
            drop(self.join_or_start(key, Some(runtime)));
            if let Some(secret) = self.serve_stale(key) {
                return Ok(secret);
            }
        }
        let mut serve_stale = stale;
        loop {
            match self.load(key, serve_stale).await {
                Loaded::Done(Ok(secret)) => {
                    record_outcome("miss");
                    return Ok(secret);
                }
                Loaded::Done(Err(err)) => {
                    if err.kind().serves_stale()
                        && let Some(secret) = self.serve_stale(key)
                    {
                        return Ok(secret);
                    }
                    record_outcome("miss");
                    return Err(err);
                }
                Loaded::StillLoading => match self.serve_stale(key) {
                    Some(secret) => return Ok(secret),
                    // Gone in the meantime (invalidated or withheld): wait for the load itself.
                    None => serve_stale = false,
                },
            }
        }
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
        match &self.runtime {
            // The result is cached by the load; a failure leaves the current entry to expire.
            Some(runtime) => drop(self.join_or_start(key, Some(runtime))),
            // No runtime to run it on: the hit is answered, the reload skipped and counted.
            None => self.recorder.refresh_skipped(),
        }
    }

    /// The flight of `key`, joined or started. A started flight runs detached on `runtime`;
    /// without one, the returned guard is the caller's to run (see [`load`](Self::load)).
    fn join_or_start(
        self: &Arc<Self>,
        key: &KeyName,
        runtime: Option<&Handle>,
    ) -> (Arc<Flight>, Option<LoadGuard>) {
        let mut flights = self.flights.lock();
        if let Some(flight) = flights.get(key) {
            return (flight.clone(), None);
        }
        let flight = Arc::new(Flight::new());
        flights.insert(key.clone(), flight.clone());
        drop(flights);
        let guard = LoadGuard {
            core: self.clone(),
            key: key.clone(),
            flight: flight.clone(),
            settled: false,
        };
        match runtime {
            Some(runtime) => {
                // The guard moves into the task: if the runtime drops the task unpolled (it is
                // shutting down), the guard still abandons the flight.
                drop(runtime.spawn(guard.core.clone().run_detached(guard)));
                (flight, None)
            }
            None => (flight, Some(guard)),
        }
    }

    /// Joins the load of `key` in flight, or starts one, and waits for it (with
    /// `serve_stale`, at most the stale wait).
    ///
    /// With a runtime, the load runs detached: a caller that leaves changes nothing for it,
    /// so its failure still reaches the breaker below and the stale decision, and its success
    /// the cache. Without one, the first caller runs it; if that caller leaves, the flight
    /// is abandoned (its bookkeeping freed) and a remaining waiter starts another.
    async fn load(self: &Arc<Self>, key: &KeyName, serve_stale: bool) -> Loaded {
        let mut runtime = self.runtime.as_ref();
        loop {
            let (flight, guard) = self.join_or_start(key, runtime);
            if let Some(guard) = guard {
                let result = unwind_safe(self.inner.get(key), key, self.inner.backend()).await;
                guard.finish(result.clone());
                return Loaded::Done(result);
            }
            match flight.wait(serve_stale).await {
                Wait::Done(result) => return Loaded::Done(result),
                Wait::StaleWaitOver => return Loaded::StillLoading,
                // Its runner left (or the captured runtime has shut down and dropped the
                // task): run the next one here, so a dead runtime cannot make this spin.
                Wait::Abandoned => runtime = None,
            }
        }
    }

    /// A load on the captured runtime: bounded by the load timeout, and telling waiters with
    /// a stale value when the stale wait is over (when the runtime has timers).
    async fn run_detached(self: Arc<Self>, guard: LoadGuard) {
        let (key, flight) = (guard.key.clone(), guard.flight.clone());
        let (key, flight) = (&key, &flight);
        let mut load = pin!(unwind_safe(self.inner.get(key), key, self.inner.backend()));
        let result = if self.timers {
            let mut deadline = pin!(tokio::time::sleep(self.load_timeout));
            let mut stale_wait = self
                .max_stale
                .map(|_| Box::pin(tokio::time::sleep(self.stale_wait)));
            poll_fn(|cx| {
                if let Poll::Ready(result) = load.as_mut().poll(cx) {
                    return Poll::Ready(result);
                }
                if let Some(wait) = &mut stale_wait
                    && wait.as_mut().poll(cx).is_ready()
                {
                    stale_wait = None;
                    flight.stale_wait_over();
                }
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "the cache's load of '{key}' did not finish within {:?}",
                            self.load_timeout
                        ),
                    )
                    .with_backend(self.inner.backend()))),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await
        } else {
            load.await
        };
        guard.finish(result);
    }

    /// Removes `flight` from the map if it is still the one for `key`.
    fn retire(&self, key: &KeyName, flight: &Arc<Flight>) {
        let mut flights = self.flights.lock();
        if flights.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            flights.remove(key);
        }
    }

    /// Caches a load's result (unless a write superseded it), retires its flight and hands
    /// the result to its waiters.
    fn finish(&self, key: &KeyName, flight: &Arc<Flight>, result: Result<StoredSecret>) {
        self.recorder
            .load(result.is_ok() || result.as_ref().is_err_and(Error::is_not_found));
        let now = self.clock.now();
        let answer = match &result {
            // The version a consumer reported refused, still answered while its forced
            // refresh runs: handed to the waiters, never cached.
            Ok(secret) if self.rejections.refuses(key, secret.meta.version.as_deref()) => None,
            Ok(secret) => Some((Answer::Found(secret.clone()), self.fresh_for(secret))),
            Err(e) if e.is_not_found() => self.negative_ttl.map(|ttl| (Answer::Missing, ttl)),
            Err(_) => None,
        };
        // What the backend said last about a key wins: once it says the key is gone (or not
        // ours to read), no older value stays to be served stale.
        let gone = matches!(
            &result,
            Err(e) if e.kind().withdraws_stale()
        );
        let mut flights = self.flights.lock();
        if !flight.is_superseded() {
            if let Some((answer, fresh_for)) = answer.filter(|_| !self.is_unsettled(key, now)) {
                self.insert(key, answer, now, fresh_for);
            } else if gone && self.index.pin().remove(key).is_some() {
                self.policy.remove(key);
                self.recorder.eviction(EvictionCause::Explicit);
            }
        }
        if flights.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            flights.remove(key);
        }
        drop(flights);
        flight.complete(result);
        self.maybe_sweep(now);
        self.push_size();
    }

    /// Inserts a loaded answer (under the flight lock).
    fn insert(&self, key: &KeyName, answer: Answer, now: Instant, fresh_for: Duration) {
        let max_stale = self.max_stale.unwrap_or_default();
        let mut entry = Entry::new(answer, key, now, fresh_for, max_stale);
        let index = self.index.pin();
        let old = index.get(key);
        if old.is_some_and(|old| now >= old.expires_at) {
            // The reload of an expired entry is that entry expiring.
            self.recorder.eviction(EvictionCause::Expired);
        }
        // A reload of the same weight keeps its policy slot (nothing to tell moka), but only
        // while moka still holds that slot: one it evicted meanwhile must not be reused, or
        // the new entry would be served without moka counting it against the capacity.
        let kept = old
            .filter(|old| old.weight == entry.weight)
            .map(|old| old.id);
        let id = kept.unwrap_or_else(|| self.next_id());
        entry.id = id;
        let slot = Slot::of(&entry);
        // Index first: when moka hears of the entry, it is there to be evicted.
        let again = kept.map(|_| Answer::clone(&entry.answer));
        index.insert(key.clone(), entry);
        match again {
            None => self.policy.admit(key, slot),
            // Checked after the insert (one moka read per reload). If moka dropped the kept
            // slot, before the insert or during it, its eviction listener (which removes the
            // entry with that key *and id*) may not have run yet: the entry is inserted again
            // under a new id, which that listener cannot remove, and admitted. So hits never
            // read an entry moka does not count, and moka never counts one hits cannot read.
            Some(answer) if !self.policy.tracks(key, id) => {
                let mut entry = Entry::new(answer, key, now, fresh_for, max_stale);
                entry.id = self.next_id();
                let slot = Slot::of(&entry);
                index.insert(key.clone(), entry);
                self.policy.admit(key, slot);
            }
            Some(_) => {}
        }
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
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
        self.unsettled.lock().retain(|_, until| now < *until);
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

    /// How long a loaded secret stays fresh: the jittered TTL, but never past the rotation
    /// the backend published for it ([`SecretMeta::next_rotation`](kms_core::SecretMeta)).
    fn fresh_for(&self, secret: &StoredSecret) -> Duration {
        let ttl = self.jittered_ttl();
        match secret.meta.next_rotation {
            Some(at) => self.before_rotation(ttl, at, SystemTime::now()),
            None => ttl,
        }
    }

    /// `ttl`, or, when the rotation at `at` comes sooner, the time until it shortened by a
    /// random part of the jitter window (the jitter fraction of the TTL, at most the time
    /// left), so the entries of a fleet expire spread over the window before the rotation
    /// rather than in one second. A date already past (the rotation is due and the backend
    /// has not published the next one yet) leaves `ttl` as it is.
    fn before_rotation(&self, ttl: Duration, at: SystemTime, now: SystemTime) -> Duration {
        let Ok(left) = at.duration_since(now) else {
            return ttl;
        };
        if left >= ttl {
            return ttl;
        }
        let window = self.ttl.mul_f64(self.jitter).min(left);
        left - window.mul_f64(fastrand::f64())
    }

    /// Whether `key` had a write fail or be dropped less than the load timeout ago (under the
    /// flight lock); forgets the mark once it is over.
    fn is_unsettled(&self, key: &KeyName, now: Instant) -> bool {
        let mut unsettled = self.unsettled.lock();
        match unsettled.get(key) {
            Some(until) if now < *until => true,
            Some(_) => {
                unsettled.remove(key);
                false
            }
            None => false,
        }
    }

    /// A write of `key` failed or was dropped and its outcome is unknown: it may have landed,
    /// or land later (its request was on the wire, or the backend runs writes to completion
    /// on their own task, as [`kms_core::WriteOrder`] does), after a load has read the older
    /// value. Only this key is touched, and only for the load timeout (the longest the cache
    /// lets a platform call run: by then the write has landed or never will):
    ///
    /// - its loads are answered but not cached, so the value read before the write lands is
    ///   never served for a whole TTL after it, and a load in flight is superseded;
    /// - its value is no longer fresh. With [`Fallback::Withhold`] (a `store`) it is kept,
    ///   but not served stale until the mark is over; then it is a stale fallback again, like
    ///   any expired value (the write failed, as its caller was told). With
    ///   [`Fallback::Drop`] (a `remove`) it is dropped.
    ///
    /// A later write of the key that succeeds invalidates it as usual (its value replaces the
    /// withheld one); the mark stays until it ends, since the earlier write may still land
    /// after it.
    pub(crate) fn unsettle(&self, key: &KeyName, fallback: Fallback) {
        let mut flights = self.flights.lock();
        self.rejections.forget_latest(key);
        let now = self.clock.now();
        let until = now + self.load_timeout;
        self.unsettled.lock().insert(key.clone(), until);
        if let Some(flight) = flights.remove(key) {
            flight.supersede();
        }
        let index = self.index.pin();
        let withheld = match fallback {
            Fallback::Withhold => index.get(key).and_then(|old| old.withheld(now, until)),
            Fallback::Drop => None,
        };
        match withheld {
            Some(entry) => {
                // Same id and weight: moka's slot for the key stays right, unless moka dropped
                // it meanwhile; then the copy goes too (an entry moka does not count is never
                // kept).
                let id = entry.id;
                index.insert(key.clone(), entry);
                if !self.policy.tracks(key, id) {
                    let _ = index.remove_if(key, |_, e| e.id == id);
                }
            }
            None => {
                if index.remove(key).is_some() {
                    self.recorder.eviction(EvictionCause::Explicit);
                }
                self.policy.remove(key);
            }
        }
        drop(index);
        drop(flights);
        self.push_size();
        // The sweep forgets the marks that are over, so failed writes of ever new keys with no
        // reads in between do not pile up.
        self.maybe_sweep(self.clock.now());
    }

    /// Removes `key` and supersedes any load of it in flight.
    pub(crate) fn invalidate(&self, key: &KeyName) {
        let mut flights = self.flights.lock();
        self.rejections.forget_latest(key);
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

    /// A consumer reports that `version` of `key` was refused downstream (see
    /// [`CacheHandle::report_rejected`](crate::CacheHandle::report_rejected)). Decided before
    /// the first await: a report dropped after its first poll has still dropped the version
    /// and started the refresh, which runs detached on the captured runtime.
    pub(crate) async fn report_rejected(
        self: &Arc<Self>,
        key: &KeyName,
        version: &str,
    ) -> Rejection {
        if let Err(err) = self.check() {
            let outcome = Rejection::Failed(err.kind());
            self.recorder.rejection(outcome);
            return outcome;
        }
        let decision = {
            // Under the flight lock, like every insert: a load that finishes after this
            // decision sees the refresh and does not cache the refused version.
            let _flights = self.flights.lock();
            let index = self.index.pin();
            let cached = index.get(key).and_then(|entry| match &entry.answer {
                Answer::Found(secret) => secret.meta.version.clone(),
                Answer::Missing => None,
            });
            let decision =
                self.rejections
                    .decide(key, version, cached.as_deref(), self.clock.now());
            if let Decision::Start(_) = &decision {
                // Dropped with its stale fallback: the version is never served again from here.
                if index.remove(key).is_some() {
                    self.recorder.eviction(EvictionCause::Explicit);
                }
                self.policy.remove(key);
            }
            decision
        };
        let outcome = match decision {
            Decision::Ignore => Rejection::IgnoredUnknown,
            Decision::RateLimited => Rejection::RateLimited,
            Decision::Join(forced) => forced.wait().await,
            Decision::Start(forced) => {
                self.recorder.forced_refresh();
                self.push_size();
                let guard = ForcedGuard {
                    core: self.clone(),
                    key: key.clone(),
                    forced: forced.clone(),
                    ended: false,
                };
                match &self.runtime {
                    // Detached, like a load: the reporter leaving changes nothing for it.
                    Some(runtime) => drop(runtime.spawn(self.clone().force_refresh(guard))),
                    None => self.clone().force_refresh(guard).await,
                }
                forced.wait().await
            }
        };
        self.recorder.rejection(outcome);
        outcome
    }

    /// Reloads `key` until the backend answers another version than the refused one, the
    /// load fails for good, or the retry budget is over (each read joins the key's
    /// single-flight load, shared with the readers that miss meanwhile).
    async fn force_refresh(self: Arc<Self>, guard: ForcedGuard) {
        let key = guard.key.clone();
        let refused = guard.forced.version.clone();
        let deadline = self
            .timers
            .then(|| tokio::time::Instant::now() + self.rejection_retry_budget);
        let mut backoff = REJECTION_BACKOFF_FIRST;
        let outcome = loop {
            if self.holds_other_version(&key, &refused) {
                // A reader's load cached the new version meanwhile: no read needed.
                break Rejection::Refreshed;
            }
            let read = match self.load(&key, false).await {
                Loaded::Done(result) => result,
                Loaded::StillLoading => unreachable!("waited without serving stale"),
            };
            let last = match read {
                Ok(secret) if secret.meta.version.as_deref() != Some(&*refused) => {
                    break Rejection::Refreshed;
                }
                Ok(secret) => {
                    guard.forced.answered(secret);
                    Rejection::StillRejected
                }
                Err(err) if err.kind().is_retryable() => Rejection::Failed(err.kind()),
                Err(err) => break Rejection::Failed(err.kind()),
            };
            // Without timers (no runtime, or one without its time driver) there is no way
            // to wait: one read only.
            let Some(deadline) = deadline else {
                break last;
            };
            let wait = backoff.mul_f64(0.5 + 0.5 * fastrand::f64());
            if tokio::time::Instant::now() + wait >= deadline {
                break last;
            }
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(REJECTION_BACKOFF_MAX);
        };
        guard.end(outcome);
    }

    /// Whether the cache holds a value of `key` fresh now whose version is not `refused`.
    fn holds_other_version(&self, key: &KeyName, refused: &str) -> bool {
        let index = self.index.pin();
        index.get(key).is_some_and(|entry| {
            matches!(&entry.answer, Answer::Found(s) if s.meta.version.as_deref() != Some(refused))
                && self.clock.now() < entry.expires_at
        })
    }

    /// Ends the forced refresh `forced` of `key` with `outcome`, and records it as an audit
    /// event (the key and version ids, never a value).
    fn end_forced(&self, key: &KeyName, forced: &Arc<Forced>, outcome: Rejection) {
        self.rejections.end(key, forced, outcome, self.clock.now());
        tracing::info!(
            target: "kms::audit",
            operation = "credential_rejected",
            key = key.as_str(),
            version = &*forced.version,
            backend = self.inner.backend(),
            outcome = outcome.as_str(),
            "a credential the cache served was refused downstream; the key was refreshed"
        );
    }

    pub(crate) async fn refresh(self: &Arc<Self>, key: &KeyName) -> Result<StoredSecret> {
        self.check()?;
        self.invalidate(key);
        match self.load(key, false).await {
            Loaded::Done(result) => result,
            Loaded::StillLoading => unreachable!("waited without serving stale"),
        }
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

    /// Loads in flight now (the cache's in-flight bookkeeping).
    pub(crate) fn loads_in_flight(&self) -> usize {
        self.flights.lock().len()
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let (entries, bytes) = self.policy.settle();
        self.recorder
            .snapshot(entries, bytes, self.loads_in_flight() as u64)
    }
}

#[cfg(test)]
mod tests;
