//! Single-flight loads: concurrent misses of one key share one backend call.

use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};

use kms_core::{Result, StoredSecret};
use parking_lot::Mutex;
use tokio::sync::Notify;

/// One load of one key, shared by every `get` that missed while it ran.
pub(crate) struct Flight {
    state: Mutex<State>,
    /// Woken on every change of `state`.
    changed: Notify,
    /// Set by a write or an invalidation through the cache while the load ran: its result is
    /// still returned to its waiters (they asked before the write), but never cached.
    superseded: AtomicBool,
}

enum State {
    /// The load runs; `stale_wait_over` once stale-while-revalidate may serve a stale value.
    Running { stale_wait_over: bool },
    /// The load's result, which every waiter clones (errors included).
    Done(Result<StoredSecret>),
    /// The load was dropped before it finished (its caller left, in a cache without a
    /// runtime; or its runtime shut down): a waiter starts another.
    Abandoned,
}

/// What a waiter learns.
pub(crate) enum Wait {
    Done(Result<StoredSecret>),
    /// Still loading, past the stale-while-revalidate wait (only for waiters that asked).
    StaleWaitOver,
    Abandoned,
}

impl Flight {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State::Running {
                stale_wait_over: false,
            }),
            changed: Notify::new(),
            superseded: AtomicBool::new(false),
        }
    }

    pub(crate) fn supersede(&self) {
        self.superseded.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_superseded(&self) -> bool {
        self.superseded.load(Ordering::SeqCst)
    }

    /// Waits for the load's result; with `serve_stale`, also returns once the
    /// stale-while-revalidate wait is over.
    pub(crate) async fn wait(&self, serve_stale: bool) -> Wait {
        loop {
            // Registered before the state is read, so no change between the two is missed.
            let mut notified = pin!(self.changed.notified());
            notified.as_mut().enable();
            match &*self.state.lock() {
                State::Done(result) => return Wait::Done(result.clone()),
                State::Abandoned => return Wait::Abandoned,
                State::Running {
                    stale_wait_over: true,
                } if serve_stale => return Wait::StaleWaitOver,
                State::Running { .. } => {}
            }
            notified.await;
        }
    }

    pub(crate) fn stale_wait_over(&self) {
        if let State::Running { stale_wait_over } = &mut *self.state.lock() {
            *stale_wait_over = true;
        }
        self.changed.notify_waiters();
    }

    pub(crate) fn complete(&self, result: Result<StoredSecret>) {
        *self.state.lock() = State::Done(result);
        self.changed.notify_waiters();
    }

    /// Marks an unfinished load as abandoned (a finished one keeps its result).
    pub(crate) fn abandon(&self) {
        {
            let mut state = self.state.lock();
            if matches!(*state, State::Running { .. }) {
                *state = State::Abandoned;
            }
        }
        self.changed.notify_waiters();
    }
}
