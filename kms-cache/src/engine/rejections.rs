//! Reports of credentials refused downstream: which version of which key is being refreshed
//! (and must not be cached meanwhile), and when each key's last forced refresh ended (the
//! rate limit). A leaf: the engine decides with it and runs the refresh.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kms_core::{KeyName, StoredSecret};
use parking_lot::Mutex;
use quanta::Instant;
use tokio::sync::Notify;

use crate::rejection::Rejection;

/// Past this many keys remembered, a decision first forgets the keys whose rate limit is over.
const PRUNE_ABOVE: usize = 1024;

/// One forced refresh of one key, started by the first report of the version it replaces and
/// joined by the reports of that version that arrive while it runs.
pub(crate) struct Forced {
    /// The version reported refused: never cached while this refresh runs.
    pub(crate) version: Arc<str>,
    /// The refused version as the refresh's most recent read answered it (the backend still
    /// says it is current): what readers of the key get meanwhile, without a read of their
    /// own. Never in the cache's index, never a hit.
    latest: Mutex<Option<StoredSecret>>,
    outcome: Mutex<Option<Rejection>>,
    done: Notify,
}

impl Forced {
    /// The refresh's last read answered the refused version with `secret`.
    pub(crate) fn answered(&self, secret: StoredSecret) {
        *self.latest.lock() = Some(secret);
    }

    /// Waits for the refresh's outcome.
    pub(crate) async fn wait(&self) -> Rejection {
        loop {
            // Registered before the outcome is read, so an outcome set in between is not missed.
            let mut notified = pin!(self.done.notified());
            notified.as_mut().enable();
            if let Some(outcome) = *self.outcome.lock() {
                return outcome;
            }
            notified.await;
        }
    }
}

/// What to do with one report.
pub(crate) enum Decision {
    /// The version is not the cached one and no refresh of it runs: nothing.
    Ignore,
    /// The cached version, but the key's last forced refresh ended less than the rate limit
    /// ago, or one of another version runs: nothing.
    RateLimited,
    /// A refresh of this version runs: wait for its outcome.
    Join(Arc<Forced>),
    /// Drop the cached version and run this refresh.
    Start(Arc<Forced>),
}

#[derive(Default)]
struct KeyState {
    running: Option<Arc<Forced>>,
    last_end: Option<Instant>,
}

pub(crate) struct Rejections {
    keys: Mutex<HashMap<KeyName, KeyState>>,
    /// Refreshes running now: while zero, loads never take the lock to ask.
    running: AtomicUsize,
    rate_limit: Duration,
}

impl Rejections {
    pub(crate) fn new(rate_limit: Duration) -> Self {
        Self {
            keys: Mutex::default(),
            running: AtomicUsize::new(0),
            rate_limit,
        }
    }

    /// Decides a report that `version` of `key` was refused, the cache holding `cached` (its
    /// version id, if it holds a value with one) at `now`.
    pub(crate) fn decide(
        &self,
        key: &KeyName,
        version: &str,
        cached: Option<&str>,
        now: Instant,
    ) -> Decision {
        let mut keys = self.keys.lock();
        if let Some(state) = keys.get(key) {
            match &state.running {
                Some(forced) if &*forced.version == version => {
                    return Decision::Join(forced.clone());
                }
                Some(_) if cached == Some(version) => return Decision::RateLimited,
                _ => {}
            }
        }
        if cached != Some(version) {
            return Decision::Ignore;
        }
        if let Some(state) = keys.get(key)
            && state
                .last_end
                .is_some_and(|end| now < end + self.rate_limit)
        {
            return Decision::RateLimited;
        }
        if keys.len() > PRUNE_ABOVE {
            keys.retain(|_, s| {
                s.running.is_some() || s.last_end.is_some_and(|end| now < end + self.rate_limit)
            });
        }
        let forced = Arc::new(Forced {
            version: version.into(),
            latest: Mutex::new(None),
            outcome: Mutex::new(None),
            done: Notify::new(),
        });
        keys.entry(key.clone()).or_default().running = Some(forced.clone());
        self.running.fetch_add(1, Ordering::SeqCst);
        Decision::Start(forced)
    }

    /// Whether a load of `key` that read `version` must not be cached: a refresh replacing
    /// that version runs. One atomic load while no refresh runs anywhere.
    pub(crate) fn refuses(&self, key: &KeyName, version: Option<&str>) -> bool {
        if self.running.load(Ordering::SeqCst) == 0 {
            return false;
        }
        let Some(version) = version else {
            return false;
        };
        self.keys
            .lock()
            .get(key)
            .and_then(|s| s.running.as_ref())
            .is_some_and(|forced| &*forced.version == version)
    }

    /// What a reader of `key` gets while a forced refresh of it runs and its last read
    /// answered the refused version (see [`Forced::answered`]). One atomic load while no
    /// refresh runs anywhere.
    pub(crate) fn latest(&self, key: &KeyName) -> Option<StoredSecret> {
        if self.running.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let keys = self.keys.lock();
        let forced = keys.get(key)?.running.as_ref()?;
        forced.latest.lock().clone()
    }

    /// Forgets the refused answer readers of `key` get (a write through the cache replaced
    /// the key): they load it again.
    pub(crate) fn forget_latest(&self, key: &KeyName) {
        if self.running.load(Ordering::SeqCst) == 0 {
            return;
        }
        if let Some(forced) = self.keys.lock().get(key).and_then(|s| s.running.as_ref()) {
            *forced.latest.lock() = None;
        }
    }

    /// The refresh `forced` of `key` ended with `outcome` at `now`: its version may be cached
    /// again, the rate limit starts, and every report waiting for it learns the outcome.
    /// Idempotent (a refresh ended twice keeps its first outcome).
    pub(crate) fn end(
        &self,
        key: &KeyName,
        forced: &Arc<Forced>,
        outcome: Rejection,
        now: Instant,
    ) {
        {
            let mut keys = self.keys.lock();
            if let Some(state) = keys.get_mut(key)
                && state
                    .running
                    .as_ref()
                    .is_some_and(|f| Arc::ptr_eq(f, forced))
            {
                state.running = None;
                state.last_end = Some(now);
                self.running.fetch_sub(1, Ordering::SeqCst);
            }
        }
        {
            let mut slot = forced.outcome.lock();
            if slot.is_none() {
                *slot = Some(outcome);
            }
        }
        forced.done.notify_waiters();
    }
}
