//! [`CircuitBreakerLayer`] and [`CircuitBreaker`]: fail fast while the backend is down.
//!
//! # States
//!
//! - **Closed**: calls flow; the outcome of each is recorded in a rolling window of the last
//!   `window` calls [20]. When at least `min_calls` [10] are recorded and the share of
//!   failures is at or above `failure_ratio` [0.5], the circuit opens.
//! - **Open**: calls fail at once with [`ErrorKind::CircuitOpen`] and never reach the backend.
//!   After `open_delay` [5 s] the next call moves it to half-open.
//! - **Half-open**: at most `half_open_calls` [3] trial calls run at a time (others are
//!   rejected as if open). `success_threshold` [3] consecutive successes close it (with an
//!   empty window); any failure re-opens it for another `open_delay`.
//!
//! Only errors that say the backend is unhealthy count as failures
//! ([`ErrorKind::is_backend_unhealthy`]: timeout, unavailable, rate limited, retries of those
//! exhausted). Not found, permission and input errors are answers from a healthy backend and
//! count as successes, so a storm of lookups of missing keys never opens the circuit.
//!
//! # Cost
//!
//! The closed path is lock-free: one atomic load of the state, one `fetch_add` for the window
//! position, one `swap` of the window slot and, only when a failure enters or leaves the
//! window, one add on the failure count. Locks are taken only to run state-change hooks.
//!
//! # Observing
//!
//! [`CircuitBreakerHandle::state`] reads the state; [`CircuitBreakerHandle::on_state_change`]
//! registers a hook run on every transition (kms-metrics exports the
//! `<prefix>_circuit_breaker_state{backend}` gauge with [`CircuitState::as_gauge`]). One layer
//! is one breaker: every store it wraps shares the state, so use one layer per backend.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::circuit_state::CircuitState;
use crate::error::{Error, ErrorKind, Result};
use crate::key_name::{KeyName, KeyPrefix};
use crate::layer::Layer;
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
        }
    }
}

const STATE_MASK: u64 = 0b11;
const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

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

/// The state every wrapper and handle of one layer shares.
struct Shared {
    config: Config,
    /// The state in the low 2 bits and, above them, the nanoseconds since `epoch` at which
    /// the circuit last opened: one word, so a transition and its time change together.
    word: AtomicU64,
    epoch: Instant,
    slots: Box<[AtomicU8]>,
    position: AtomicU64,
    failures: AtomicU32,
    half_open_in_flight: AtomicU32,
    half_open_successes: AtomicU32,
    /// Run under this lock, so their calls are serialized (see `transition`).
    hooks: Mutex<Vec<Hook>>,
}

impl Shared {
    fn new(config: Config, hooks: Vec<Hook>) -> Self {
        Self {
            config,
            word: AtomicU64::new(CLOSED as u64),
            epoch: Instant::now(),
            slots: (0..config.window).map(|_| AtomicU8::new(EMPTY)).collect(),
            position: AtomicU64::new(0),
            failures: AtomicU32::new(0),
            half_open_in_flight: AtomicU32::new(0),
            half_open_successes: AtomicU32::new(0),
            hooks: Mutex::new(hooks),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn state(&self) -> CircuitState {
        to_state(self.raw_state())
    }

    fn hooks(&self) -> MutexGuard<'_, Vec<Hook>> {
        self.hooks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn raw_state(&self) -> u8 {
        (self.word.load(Ordering::Acquire) & STATE_MASK) as u8
    }

    /// Moves `from` → `to` if still in `from` (stamping the time when `to` is open); runs the
    /// hooks if this call made the move.
    fn transition(&self, from: u8, to: u8) -> bool {
        let mut word = self.word.load(Ordering::Acquire);
        loop {
            if (word & STATE_MASK) as u8 != from {
                return false;
            }
            let time = if to == OPEN {
                self.now() << 2
            } else {
                word & !STATE_MASK
            };
            match self.word.compare_exchange_weak(
                word,
                time | u64::from(to),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => word = actual,
            }
        }
        if to == OPEN {
            // No trial can start before the open delay; stale ones are ignored in `finish`.
            self.half_open_in_flight.store(0, Ordering::Release);
            self.half_open_successes.store(0, Ordering::Release);
        }
        // Hooks run one at a time and get the state current when they run, not `to`: two
        // transitions racing on two threads could otherwise report out of order and leave a
        // gauge showing a stale state. The last hook call always carries the current state.
        let hooks = self.hooks();
        let state = self.state();
        for hook in hooks.iter() {
            hook(state);
        }
        true
    }

    fn open(&self, from: u8) {
        self.transition(from, OPEN);
    }

    /// Gives a trial permit back, never below zero (the count is reset when the circuit opens).
    fn release_trial(&self) {
        let _ = self
            .half_open_in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    fn reset_window(&self) {
        for slot in &self.slots {
            slot.store(EMPTY, Ordering::Relaxed);
        }
        self.position.store(0, Ordering::Relaxed);
        self.failures.store(0, Ordering::Relaxed);
    }

    /// Records a closed-state outcome; opens the circuit when the window says so.
    fn record(&self, failed: bool) {
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
            self.open(CLOSED);
        }
    }

    /// Decides whether a call may go through, and as what.
    fn admit(&self) -> Option<Admission> {
        loop {
            let word = self.word.load(Ordering::Acquire);
            match (word & STATE_MASK) as u8 {
                CLOSED => return Some(Admission::Closed),
                OPEN => {
                    let opened = word >> 2;
                    let delay =
                        u64::try_from(self.config.open_delay.as_nanos()).unwrap_or(u64::MAX);
                    if self.now().saturating_sub(opened) < delay {
                        return None;
                    }
                    self.transition(OPEN, HALF_OPEN);
                }
                _ => {
                    let in_flight = self.half_open_in_flight.fetch_add(1, Ordering::AcqRel);
                    if in_flight < self.config.half_open_calls {
                        return Some(Admission::Trial);
                    }
                    self.release_trial();
                    return None;
                }
            }
        }
    }

    fn finish(&self, admission: Admission, failed: bool) {
        match admission {
            Admission::Closed => {
                // A call admitted while closed that ends after the circuit opened is not
                // counted again: the window was what opened it.
                if self.raw_state() == CLOSED {
                    self.record(failed);
                }
            }
            Admission::Trial => {
                self.release_trial();
                if self.raw_state() != HALF_OPEN {
                    // A trial that outlived its half-open period says nothing about this one.
                } else if failed {
                    self.open(HALF_OPEN);
                } else {
                    let n = self.half_open_successes.fetch_add(1, Ordering::AcqRel) + 1;
                    if n >= self.config.success_threshold {
                        self.reset_window();
                        self.transition(HALF_OPEN, CLOSED);
                    }
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Admission {
    Closed,
    Trial,
}

/// Configures a [`CircuitBreaker`] and holds its shared state; see the [module docs](self).
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
    /// The reference settings: window 20, min 10 calls, ratio 0.5, 5 s open, 3 trial calls,
    /// 3 successes to close.
    pub fn new() -> Self {
        Self::default()
    }

    fn with(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = self.shared.config;
        change(&mut config);
        let hooks = self.shared.hooks().clone();
        Self {
            shared: Arc::new(Shared::new(config, hooks)),
        }
    }

    /// How many of the latest calls the failure ratio is computed over (at least 1).
    #[must_use]
    pub fn window(self, calls: u32) -> Self {
        self.with(|c| c.window = calls.max(1))
    }

    /// The fewest recorded calls before the circuit may open.
    #[must_use]
    pub fn min_calls(self, calls: u32) -> Self {
        self.with(|c| c.min_calls = calls)
    }

    /// The failure share (0.0 – 1.0) at or above which the circuit opens.
    #[must_use]
    pub fn failure_ratio(self, ratio: f64) -> Self {
        self.with(|c| c.failure_ratio = ratio.clamp(0.0, 1.0))
    }

    /// How long the circuit stays open before letting trial calls through.
    #[must_use]
    pub fn open_delay(self, delay: Duration) -> Self {
        self.with(|c| c.open_delay = delay)
    }

    /// How many trial calls may run at once while half-open (at least 1).
    #[must_use]
    pub fn half_open_calls(self, calls: u32) -> Self {
        self.with(|c| c.half_open_calls = calls.max(1))
    }

    /// How many consecutive trial successes close the circuit (at least 1).
    #[must_use]
    pub fn success_threshold(self, successes: u32) -> Self {
        self.with(|c| c.success_threshold = successes.max(1))
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
        self.shared.hooks().push(Arc::new(hook));
    }

    /// How many failures the closed-state window holds now.
    pub fn window_failures(&self) -> u32 {
        self.shared.failures.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for CircuitBreakerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerHandle")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// The decorator [`CircuitBreakerLayer`] makes; see the [module docs](self).
pub struct CircuitBreaker<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: KeyStore> CircuitBreaker<S> {
    /// Wraps `inner` in the breaker `layer` holds (stores wrapped by one layer share it).
    pub fn new(inner: S, layer: &CircuitBreakerLayer) -> Self {
        Self {
            inner,
            shared: layer.shared.clone(),
        }
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
        let Some(admission) = self.shared.admit() else {
            return Err(Error::new(
                ErrorKind::CircuitOpen,
                "circuit breaker is open; the backend was not called",
            )
            .with_backend(self.inner.backend()));
        };
        // If the caller drops the call midway, a trial permit must still be given back.
        let guard = Finish {
            shared: &self.shared,
            admission: Some(admission),
        };
        let result = fut.await;
        let failed = matches!(&result, Err(e) if e.kind().is_backend_unhealthy());
        guard.done(failed);
        result
    }
}

/// Gives a half-open trial permit back if the call is dropped before it ends.
struct Finish<'a> {
    shared: &'a Shared,
    admission: Option<Admission>,
}

impl Finish<'_> {
    fn done(mut self, failed: bool) {
        if let Some(admission) = self.admission.take() {
            self.shared.finish(admission, failed);
        }
    }
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        if let Some(Admission::Trial) = self.admission.take() {
            self.shared.release_trial();
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
    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        self.run(self.inner.get_version(key, version)).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        self.run(self.inner.store(key, value)).await
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
