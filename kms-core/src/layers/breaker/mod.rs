//! [`CircuitBreakerLayer`] and [`CircuitBreaker`]: fail fast while the backend is down.
//!
//! The whole story is on [`CircuitBreakerLayer`](crate::CircuitBreakerLayer) (this module is private; its items are re-exported at the crate root).

//!
//! # States
//!
//! - **Closed**: calls flow; the outcome of each is recorded in a rolling window of the last
//!   `window` calls \[20\]. When at least `min_calls` \[10\] are recorded and the share of
//!   failures is at or above `failure_ratio` [0.5], the circuit opens.
//! - **Open**: calls fail at once with [`ErrorKind::CircuitOpen`] and never reach the backend.
//!   After `open_delay` [5 s] the next call moves it to half-open.
//! - **Half-open**: at most `half_open_calls` \[3\] trial calls run at a time (others are
//!   rejected as if open). `success_threshold` \[3\] consecutive successes close it (with an
//!   empty window); any failure re-opens it for another `open_delay`. A trial that has not
//!   succeeded within `trial_timeout` [10 s] is a failure (the caller gets
//!   [`ErrorKind::Timeout`]; the deadline needs a Tokio runtime: polled outside one, a trial
//!   runs to its own end, bounded by the layers below), and so is a trial whose caller drops it: a probe that never
//!   answered is no evidence of health, and giving its slot back would let the breaker admit
//!   trials against a hung backend for ever.
//!
//! # Periods
//!
//! Every transition starts a new *period* (a generation number, kept in the same atomic word
//! as the state). A call's outcome counts only in the period that admitted it: a call admitted
//! while closed that ends after the circuit opened, or a trial of an earlier half-open period
//! that ends in a later one, changes nothing, neither the window nor the trial slots nor the
//! success count of the period it ends in.
//!
//! # Configuration
//!
//! Checked when the breaker is built ([`CircuitBreakerLayer::validate`], called by
//! [`StoreBuilder::try_build`](crate::StoreBuilder::try_build) and
//! [`CircuitBreaker::try_new`]): 1 ≤ `window` ≤ [`MAX_WINDOW`](CircuitBreakerLayer::MAX_WINDOW), 1 ≤ `min_calls` ≤ `window` (a breaker that
//! needs more calls than it remembers could never open), `failure_ratio` in (0, 1], every
//! duration longer than zero, `half_open_calls` and `success_threshold` ≥ 1. A breaker built
//! with a bad setting anyway answers every call with that
//! [`ErrorKind::Configuration`] error and never calls the backend.
//!
//! Only errors that say the backend is unhealthy count as failures
//! ([`ErrorKind::is_backend_unhealthy`]: timeout, unavailable, rate limited, retries of those
//! exhausted). Not found and permission errors are answers from a healthy backend and count as
//! successes, so a storm of lookups of missing keys never opens the circuit. Errors that never
//! reached the backend ([`Error::never_reached_backend`]: an inner breaker's open circuit,
//! input rejected by validation) count as nothing at all.
//!
//! # Cost
//!
//! The closed path is lock-free: one atomic load of the state, one `fetch_add` for the window
//! position, one `swap` of the window slot and, only when a failure enters or leaves the
//! window, one add on the failure count. Locks are taken only in half-open (the trial slots)
//! and to run state-change hooks.
//!
//! # Observing
//!
//! [`CircuitBreakerHandle::state`] reads the state; [`CircuitBreakerHandle::on_state_change`]
//! registers a hook run on every transition (kms-metrics exports the
//! `<prefix>_circuit_breaker_state{backend}` gauge with [`CircuitState::as_gauge`]). One layer
//! is one breaker: every store it wraps shares the state, so use one layer per backend.

pub(crate) mod state;

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::{Instant, Sleep};

use self::state::CircuitState;
use super::deadline::poll_deadline;
use super::layer::Layer;
use crate::error::{Error, ErrorKind, Result};
use crate::key_name::{KeyName, KeyPrefix};
use crate::secret::{SecretMeta, SecretValue, StoredSecret};
use crate::store::{Capabilities, KeyStore};

/// The breaker's settings; defaults are the reference settings.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Config {
    window: u32,
    min_calls: u32,
    failure_ratio: f64,
    open_delay: Duration,
    half_open_calls: u32,
    success_threshold: u32,
    trial_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            window: 20,
            min_calls: 10,
            failure_ratio: 0.5,
            open_delay: Duration::from_secs(5),
            half_open_calls: 3,
            success_threshold: 3,
            trial_timeout: CircuitBreakerLayer::DEFAULT_TRIAL_TIMEOUT,
        }
    }
}

impl Config {
    fn validate(&self) -> Result<()> {
        let positive = |setting: &str, d: Duration| {
            if d.is_zero() {
                Err(Error::configuration(setting, "must be longer than zero"))
            } else {
                Ok(())
            }
        };
        if self.window == 0 {
            return Err(Error::configuration("window", "must be at least 1 call"));
        }
        if self.window > CircuitBreakerLayer::MAX_WINDOW {
            return Err(Error::configuration(
                "window",
                format!(
                    "{} calls is more than the most, {}",
                    self.window,
                    CircuitBreakerLayer::MAX_WINDOW
                ),
            ));
        }
        if self.min_calls == 0 {
            return Err(Error::configuration("min_calls", "must be at least 1 call"));
        }
        if self.min_calls > self.window {
            return Err(Error::configuration(
                "min_calls",
                format!(
                    "{} is more than the window of {} calls: the circuit could never open",
                    self.min_calls, self.window
                ),
            ));
        }
        if !(self.failure_ratio > 0.0 && self.failure_ratio <= 1.0) {
            return Err(Error::configuration(
                "failure_ratio",
                format!("{} is not in (0, 1]", self.failure_ratio),
            ));
        }
        positive("open_delay", self.open_delay)?;
        positive("trial_timeout", self.trial_timeout)?;
        if self.half_open_calls == 0 {
            return Err(Error::configuration(
                "half_open_calls",
                "must be at least 1 call",
            ));
        }
        if self.success_threshold == 0 {
            return Err(Error::configuration(
                "success_threshold",
                "must be at least 1 success",
            ));
        }
        Ok(())
    }
}

const STATE_MASK: u64 = 0b11;
const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// The word: bits 0–1 the state, bits 2–23 the period (generation, wrapping), bits 24–63 the
/// milliseconds since `epoch` at which the circuit last opened (2^40 ms is 34 years).
const GEN_SHIFT: u32 = 2;
const GEN_MASK: u64 = (1 << 22) - 1;
const TIME_SHIFT: u32 = 24;

fn state_of(word: u64) -> u8 {
    (word & STATE_MASK) as u8
}

fn gen_of(word: u64) -> u32 {
    ((word >> GEN_SHIFT) & GEN_MASK) as u32
}

const EMPTY: u8 = 0;
const SUCCESS: u8 = 1;
const FAILURE: u8 = 2;

fn to_state(raw: u8) -> CircuitState {
    match raw {
        CLOSED => CircuitState::Closed,
        OPEN => CircuitState::Open,
        _ => CircuitState::HalfOpen,
    }
}

type Hook = Arc<dyn Fn(CircuitState) + Send + Sync>;

/// The trial slots of the current half-open period (only touched while half-open).
#[derive(Default)]
struct Trials {
    /// The period these counts belong to.
    generation: u32,
    in_flight: u32,
    successes: u32,
}

/// How a call ended, as the breaker counts it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Failure,
    /// Never reached the backend: says nothing about it.
    Ignored,
}

impl Outcome {
    fn of<T>(result: &Result<T>) -> Self {
        match result {
            Ok(_) => Self::Success,
            Err(e) if e.never_reached_backend() => Self::Ignored,
            Err(e) if e.kind().is_backend_unhealthy() => Self::Failure,
            Err(_) => Self::Success,
        }
    }
}

/// The state every wrapper and handle of one layer shares.
struct Shared {
    config: Config,
    /// The configuration error every call answers with, if `config` is invalid.
    refused: Option<Error>,
    /// State, period and open time in one word (see `GEN_SHIFT`), so a transition, its period
    /// and its time change together.
    word: AtomicU64,
    epoch: Instant,
    slots: Box<[AtomicU8]>,
    position: AtomicU64,
    failures: AtomicU32,
    trials: Mutex<Trials>,
    /// Run under this lock, so their calls are serialized (see `run_hooks`).
    hooks: Mutex<Vec<Hook>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn new(config: Config, hooks: Vec<Hook>) -> Self {
        let refused = config.validate().err();
        Self {
            config,
            word: AtomicU64::new(u64::from(CLOSED)),
            epoch: Instant::now(),
            // One slot for a refused configuration (never used, and never divided by zero),
            // so a window too large to allocate is refused, not allocated.
            slots: (0..if refused.is_some() { 1 } else { config.window })
                .map(|_| AtomicU8::new(EMPTY))
                .collect(),
            position: AtomicU64::new(0),
            failures: AtomicU32::new(0),
            trials: Mutex::default(),
            hooks: Mutex::new(hooks),
            refused,
        }
    }

    /// Milliseconds since `epoch`.
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn state(&self) -> CircuitState {
        to_state(state_of(self.word.load(Ordering::Acquire)))
    }

    /// Moves from exactly `word` to `to`, starting a new period (and stamping the time when
    /// `to` is open). Returns the new period, or `None` if `word` is no longer current.
    fn cas(&self, word: u64, to: u8) -> Option<u32> {
        let generation = (gen_of(word) + 1) & GEN_MASK as u32;
        let time = if to == OPEN {
            self.now_ms() << TIME_SHIFT
        } else {
            word & !((1 << TIME_SHIFT) - 1)
        };
        let new = time | (u64::from(generation) << GEN_SHIFT) | u64::from(to);
        self.word
            .compare_exchange(word, new, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| generation)
    }

    /// Runs the hooks, one at a time, with the state current when they run (not the state of
    /// the transition that triggered them): two transitions racing on two threads could
    /// otherwise report out of order and leave a gauge showing a stale state. The last hook
    /// call always carries the current state.
    fn run_hooks(&self) {
        let hooks = lock(&self.hooks);
        let state = self.state();
        for hook in hooks.iter() {
            hook(state);
        }
    }

    fn reset_window(&self) {
        for slot in &self.slots {
            slot.store(EMPTY, Ordering::Relaxed);
        }
        self.position.store(0, Ordering::Relaxed);
        self.failures.store(0, Ordering::Relaxed);
    }

    /// Records the outcome of a call admitted in closed period `generation`; opens the circuit
    /// when the window says so.
    fn record(&self, generation: u32, failed: bool) {
        let position = self.position.fetch_add(1, Ordering::Relaxed);
        let len = self.slots.len() as u64;
        let slot = &self.slots[(position % len) as usize];
        let old = slot.swap(if failed { FAILURE } else { SUCCESS }, Ordering::Relaxed);
        match (old == FAILURE, failed) {
            (false, true) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
            }
            (true, false) => {
                self.failures.fetch_sub(1, Ordering::Relaxed);
            }
            _ => {}
        }
        if !failed {
            return;
        }
        let recorded = (position + 1).min(len);
        let failures = u64::from(self.failures.load(Ordering::Relaxed));
        if recorded >= u64::from(self.config.min_calls)
            && failures as f64 >= self.config.failure_ratio * recorded as f64
        {
            let word = self.word.load(Ordering::Acquire);
            if state_of(word) == CLOSED
                && gen_of(word) == generation
                && self.cas(word, OPEN).is_some()
            {
                self.run_hooks();
            }
        }
    }

    /// Decides whether a call may go through, and as what.
    fn admit(&self) -> Option<Admission> {
        loop {
            let word = self.word.load(Ordering::Acquire);
            match state_of(word) {
                CLOSED => return Some(Admission::Closed(gen_of(word))),
                OPEN => {
                    let opened = word >> TIME_SHIFT;
                    let delay =
                        u64::try_from(self.config.open_delay.as_millis()).unwrap_or(u64::MAX);
                    if self.now_ms().saturating_sub(opened) < delay.max(1) {
                        return None;
                    }
                    // Into half-open under the trial lock, so no trial is admitted against
                    // the counts of an earlier period.
                    let mut trials = lock(&self.trials);
                    if let Some(generation) = self.cas(word, HALF_OPEN) {
                        *trials = Trials {
                            generation,
                            ..Trials::default()
                        };
                        drop(trials);
                        self.run_hooks();
                    }
                }
                _ => {
                    let mut trials = lock(&self.trials);
                    if self.word.load(Ordering::Acquire) != word {
                        continue;
                    }
                    if trials.generation == gen_of(word)
                        && trials.in_flight < self.config.half_open_calls
                    {
                        trials.in_flight += 1;
                        return Some(Admission::Trial(gen_of(word)));
                    }
                    return None;
                }
            }
        }
    }

    fn finish(&self, admission: Admission, outcome: Outcome) {
        match admission {
            Admission::Closed(generation) => {
                let word = self.word.load(Ordering::Acquire);
                // Counted only in the closed period that admitted it.
                if outcome != Outcome::Ignored
                    && state_of(word) == CLOSED
                    && gen_of(word) == generation
                {
                    self.record(generation, outcome == Outcome::Failure);
                }
            }
            Admission::Trial(generation) => {
                let mut trials = lock(&self.trials);
                let word = self.word.load(Ordering::Acquire);
                if trials.generation != generation
                    || state_of(word) != HALF_OPEN
                    || gen_of(word) != generation
                {
                    // A trial of an earlier period: its slot and its outcome belonged there.
                    return;
                }
                trials.in_flight = trials.in_flight.saturating_sub(1);
                let moved = match outcome {
                    Outcome::Ignored => false,
                    Outcome::Failure => self.cas(word, OPEN).is_some(),
                    Outcome::Success => {
                        trials.successes += 1;
                        trials.successes >= self.config.success_threshold && {
                            self.reset_window();
                            self.cas(word, CLOSED).is_some()
                        }
                    }
                };
                drop(trials);
                if moved {
                    self.run_hooks();
                }
            }
        }
    }
}

/// What a call was admitted as, and in which period.
#[derive(Clone, Copy)]
enum Admission {
    Closed(u32),
    Trial(u32),
}

/// [`CircuitBreakerLayer`] and [`CircuitBreaker`]: fail fast while the backend is down.
///
/// Configures a [`CircuitBreaker`] and holds its shared state; see the [module docs](CircuitBreakerLayer).
///
/// Configure first, then take [`handle`](Self::handle)s and wrap the store: a setter starts a
/// fresh breaker (hooks registered so far are kept, earlier handles are not).
///
/// ```
/// use std::time::Duration;
/// use kms_core::{CircuitBreakerLayer, CircuitState, MemoryStore, StoreBuilder};
///
/// let breaker = CircuitBreakerLayer::new()
///     .min_calls(20)
///     .open_delay(Duration::from_secs(10))
///     .on_state_change(|state| eprintln!("vault circuit is now {state}"));
/// let handle = breaker.handle(); // for health endpoints and metrics
/// let store = StoreBuilder::new(MemoryStore::new()).layer(breaker).build();
/// assert_eq!(store.to_string(), "CircuitBreaker(Memory)");
/// assert_eq!(handle.state(), CircuitState::Closed);
/// ```
#[derive(Clone)]
pub struct CircuitBreakerLayer {
    shared: Arc<Shared>,
}

impl Default for CircuitBreakerLayer {
    fn default() -> Self {
        Self {
            shared: Arc::new(Shared::new(Config::default(), Vec::new())),
        }
    }
}

impl CircuitBreakerLayer {
    /// Reference setting: how long a half-open trial may take before it counts as a failure.
    pub const DEFAULT_TRIAL_TIMEOUT: Duration = Duration::from_secs(10);

    /// The longest rolling window, in calls: the window is one byte per call, allocated when the
    /// breaker is configured, so a larger one (a typo, `u32::MAX` = 4 GiB) is refused instead.
    pub const MAX_WINDOW: u32 = 100_000;

    /// The reference settings: window 20, min 10 calls, ratio 0.5, 5 s open, 3 trial calls,
    /// 3 successes to close, 10 s per trial.
    pub fn new() -> Self {
        Self::default()
    }

    fn with(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = self.shared.config;
        change(&mut config);
        let hooks = lock(&self.shared.hooks).clone();
        Self {
            shared: Arc::new(Shared::new(config, hooks)),
        }
    }

    /// How many of the latest calls the failure ratio is computed over (at least 1, at most
    /// [`MAX_WINDOW`](Self::MAX_WINDOW); one byte each).
    #[must_use]
    pub fn window(self, calls: u32) -> Self {
        self.with(|c| c.window = calls)
    }

    /// The fewest recorded calls before the circuit may open (at least 1, at most `window`).
    #[must_use]
    pub fn min_calls(self, calls: u32) -> Self {
        self.with(|c| c.min_calls = calls)
    }

    /// The failure share, in (0, 1], at or above which the circuit opens.
    #[must_use]
    pub fn failure_ratio(self, ratio: f64) -> Self {
        self.with(|c| c.failure_ratio = ratio)
    }

    /// How long the circuit stays open before letting trial calls through (longer than zero;
    /// kept to the millisecond).
    #[must_use]
    pub fn open_delay(self, delay: Duration) -> Self {
        self.with(|c| c.open_delay = delay)
    }

    /// How many trial calls may run at once while half-open (at least 1).
    #[must_use]
    pub fn half_open_calls(self, calls: u32) -> Self {
        self.with(|c| c.half_open_calls = calls)
    }

    /// How many consecutive trial successes close the circuit (at least 1).
    #[must_use]
    pub fn success_threshold(self, successes: u32) -> Self {
        self.with(|c| c.success_threshold = successes)
    }

    /// How long a half-open trial may take (longer than zero; default
    /// [`DEFAULT_TRIAL_TIMEOUT`](Self::DEFAULT_TRIAL_TIMEOUT), 10 s). A trial still running then is dropped, counts as a
    /// failure (the circuit re-opens) and its caller gets [`ErrorKind::Timeout`].
    #[must_use]
    pub fn trial_timeout(self, timeout: Duration) -> Self {
        self.with(|c| c.trial_timeout = timeout)
    }

    /// Checks the settings (see the [module docs](CircuitBreakerLayer#configuration)).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] naming the first bad setting.
    pub fn validate(&self) -> Result<()> {
        match &self.shared.refused {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    /// Registers a hook run on every state change (see [`CircuitBreakerHandle::on_state_change`]).
    #[must_use]
    pub fn on_state_change(self, hook: impl Fn(CircuitState) + Send + Sync + 'static) -> Self {
        self.handle().on_state_change(hook);
        self
    }

    /// A handle on this breaker's state.
    pub fn handle(&self) -> CircuitBreakerHandle {
        CircuitBreakerHandle {
            shared: self.shared.clone(),
        }
    }
}

impl fmt::Debug for CircuitBreakerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("config", &self.shared.config)
            .field("state", &self.shared.state())
            .finish()
    }
}

impl Layer for CircuitBreakerLayer {
    fn layer(&self, inner: Arc<dyn KeyStore>) -> Arc<dyn KeyStore> {
        Arc::new(CircuitBreaker::new(inner, self))
    }

    fn validate(&self) -> Result<()> {
        CircuitBreakerLayer::validate(self)
    }
}

/// A cloneable handle on a breaker's state, for metrics, health endpoints and tests.
#[derive(Clone)]
pub struct CircuitBreakerHandle {
    shared: Arc<Shared>,
}

impl CircuitBreakerHandle {
    /// The current state. An open circuit whose delay has passed reads `Open` until the next
    /// call moves it to half-open.
    pub fn state(&self) -> CircuitState {
        self.shared.state()
    }

    /// Registers `hook`, run on every transition, on the task whose call caused it.
    ///
    /// Hook calls are serialized and receive the state current when they run, so under
    /// contention a state may be reported twice in a row, but the last call always carries the
    /// current state: exactly what a gauge needs. Keep hooks short and non-blocking (set a
    /// gauge, log a line); a hook must not register hooks nor call through this breaker.
    pub fn on_state_change(&self, hook: impl Fn(CircuitState) + Send + Sync + 'static) {
        lock(&self.shared.hooks).push(Arc::new(hook));
    }

    /// How many failures the closed-state window holds now.
    pub fn window_failures(&self) -> u32 {
        self.shared.failures.load(Ordering::Relaxed)
    }

    /// How many half-open trials of the current period are running now (0 unless
    /// half-open): the breaker's in-flight bookkeeping, which a dropped or finished trial
    /// gives back.
    pub fn trials_in_flight(&self) -> u32 {
        let trials = lock(&self.shared.trials);
        let word = self.shared.word.load(Ordering::Acquire);
        if state_of(word) == HALF_OPEN && gen_of(word) == trials.generation {
            trials.in_flight
        } else {
            0
        }
    }
}

impl fmt::Debug for CircuitBreakerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerHandle")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// The decorator [`CircuitBreakerLayer`] makes; see the [module docs](CircuitBreakerLayer).
pub struct CircuitBreaker<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: KeyStore> CircuitBreaker<S> {
    /// Wraps `inner` in the breaker `layer` holds (stores wrapped by one layer share it).
    /// With an invalid configuration (see [`CircuitBreakerLayer::validate`]) every call
    /// answers that configuration error without calling `inner`; [`try_new`](Self::try_new)
    /// reports it here instead.
    pub fn new(inner: S, layer: &CircuitBreakerLayer) -> Self {
        Self {
            inner,
            shared: layer.shared.clone(),
        }
    }

    /// Wraps `inner` in the breaker `layer` holds, its configuration checked first.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] from [`CircuitBreakerLayer::validate`].
    pub fn try_new(inner: S, layer: &CircuitBreakerLayer) -> Result<Self> {
        layer.validate()?;
        Ok(Self::new(inner, layer))
    }

    /// A handle on this breaker's state.
    pub fn handle(&self) -> CircuitBreakerHandle {
        CircuitBreakerHandle {
            shared: self.shared.clone(),
        }
    }

    /// The store this one wraps.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    async fn run<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        if let Some(err) = &self.shared.refused {
            return Err(err.clone());
        }
        let Some(admission) = self.shared.admit() else {
            return Err(Error::new(
                ErrorKind::CircuitOpen,
                "circuit breaker is open; the backend was not called",
            )
            .with_backend(self.inner.backend()));
        };
        // Whatever happens to this future from here on (dropped by its caller, a panic
        // below), the admission is settled exactly once.
        let guard = Finish {
            shared: &self.shared,
            admission: Some(admission),
        };
        let result = match admission {
            Admission::Closed(_) => fut.await,
            Admission::Trial(_) => self.trial(fut).await,
        };
        guard.done(Outcome::of(&result));
        result
    }

    /// A half-open trial, bounded by the trial timeout (the timer is armed only if the first
    /// poll does not finish the call).
    async fn trial<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        let deadline = self.shared.config.trial_timeout;
        let mut fut = pin!(fut);
        let mut timer: Option<Option<Pin<Box<Sleep>>>> = None;
        let finished = poll_fn(|cx| {
            if let Poll::Ready(result) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(result));
            }
            // Outside a Tokio runtime, no timer: the trial runs to its own end.
            poll_deadline(&mut timer, deadline, cx)
        })
        .await;
        finished.unwrap_or_else(|| {
            Err(Error::new(
                ErrorKind::Timeout,
                format!("half-open trial did not succeed within {deadline:?}"),
            )
            .with_backend(self.inner.backend()))
        })
    }
}

/// Settles an admission: with the call's outcome, or, if the call is dropped before it ends,
/// as a dropped call (nothing for a closed-state call; a failure for a half-open trial).
struct Finish<'a> {
    shared: &'a Shared,
    admission: Option<Admission>,
}

impl Finish<'_> {
    fn done(mut self, outcome: Outcome) {
        if let Some(admission) = self.admission.take() {
            self.shared.finish(admission, outcome);
        }
    }
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        if let Some(admission @ Admission::Trial(_)) = self.admission.take() {
            // A trial that never answered is no evidence of health.
            self.shared.finish(admission, Outcome::Failure);
        }
    }
}

impl<S: KeyStore> fmt::Display for CircuitBreaker<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CircuitBreaker({})", self.inner)
    }
}

impl<S: KeyStore> fmt::Debug for CircuitBreaker<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("inner", &self.inner)
            .field("state", &self.shared.state())
            .finish()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: KeyStore> KeyStore for CircuitBreaker<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        self.run(self.inner.get(key)).await
    }
    fn get_now(&self, _key: &KeyName) -> Option<Result<StoredSecret>> {
        // Declined: every call that reaches below the breaker must pass through its window
        // (a synchronous answer would bypass the accounting and an open circuit). Nothing below
        // the breaker in the recommended stack answers synchronously.
        None
    }
    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        self.run(self.inner.get_version(key, version)).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        self.run(self.inner.store(key, value)).await
    }
    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> Result<SecretMeta> {
        self.run(self.inner.store_if_version(key, value, expected))
            .await
    }
    async fn remove(&self, key: &KeyName) -> Result<()> {
        self.run(self.inner.remove(key)).await
    }
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        self.run(self.inner.list(prefix)).await
    }
    async fn health(&self) -> Result<()> {
        self.run(self.inner.health()).await
    }
}
