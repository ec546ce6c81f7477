//! [`CallContext`]: one logical call, carried by every attempt of it.
//!
//! The whole story is on [`CallContext`](crate::CallContext) (this module is private; its items are re-exported at the crate root).

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::time::Instant;

use crate::error::ErrorKind;

tokio::task_local! {
    static CURRENT: CallContext;
}

/// [`CallContext`]: one logical call, carried by every attempt of it.
///
/// The [`Retry`](crate::Retry) layer opens a context around every call it makes
/// ([`CallContext::scope`]), counts each attempt in it ([`CallContext::begin_attempt`]) and
/// records how each failed attempt ended ([`CallContext::end_attempt`]). Whatever runs below
/// the retry layer reads it with [`CallContext::current`]:
///
/// - a **backend** uses the call's [`id`](CallContext::id) to make a repeated write harmless
///   (see the [`write`](crate::write) module for what each backend does with it);
/// - a **metrics** layer below the retry layer sees [`attempt`](CallContext::attempt) > 1 and
///   counts a retry of the [`previous_error`](CallContext::previous_error), so no metrics code
///   needs to wrap or know the retry layer.
///
/// A context opened further out wins: a second retry layer, or a caller who re-sends a call
/// after its own timeout inside one [`CallContext::scope`], keeps the first id and attempt
/// counter, so every attempt of the whole call is one logical call. Retry layers enter their
/// attempts with [`CallContext::enter_attempt`], so a stacked layer's first try is counted
/// once, as the attempt of the layer above it.
///
/// The context is a task-local value: it reaches every future polled inside the scope (the
/// layers and the backend below the retry layer), not tasks spawned from it.
///
/// One logical call: an id every attempt shares, how many attempts have started and how the
/// last failed one ended.
///
/// Cloning shares the state.
#[derive(Clone)]
pub struct CallContext {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    attempts: AtomicU32,
    /// Attempts begun with [`CallContext::enter_attempt`] and not yet ended: more than one
    /// when a retry layer runs below another one.
    open: AtomicU32,
    /// Whether the newest attempt has not ended yet and no attempt ran inside it: an
    /// attempt entered now, nested in it, is that same attempt.
    fresh: AtomicBool,
    started: SystemTime,
    /// The error kind and end time of the last attempt that failed.
    previous: Mutex<Option<(ErrorKind, Instant)>>,
}

impl CallContext {
    /// A new logical call with a fresh random id (32 lowercase hex characters, 128 bits), no
    /// attempt started yet.
    pub fn new() -> Self {
        let id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        Self {
            inner: Arc::new(Inner {
                id,
                attempts: AtomicU32::new(0),
                open: AtomicU32::new(0),
                fresh: AtomicBool::new(false),
                started: SystemTime::now(),
                previous: Mutex::new(None),
            }),
        }
    }

    /// The call's id: 32 lowercase hex characters, valid as an AWS `ClientRequestToken`
    /// (32 to 64 characters) and as a Vault metadata value.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// How many attempts have started, counting the one running now (1 for the first).
    /// 0 before [`begin_attempt`](Self::begin_attempt) was called.
    pub fn attempt(&self) -> u32 {
        self.inner.attempts.load(Ordering::Relaxed)
    }

    /// Whether an earlier attempt of this call has started, so a write may have landed.
    pub fn is_repeat(&self) -> bool {
        self.attempt() > 1
    }

    /// When the logical call began (wall clock), so a backend can tell a version written by
    /// an earlier attempt from an older one.
    pub fn started(&self) -> SystemTime {
        self.inner.started
    }

    /// Counts one more attempt; returns its number (1-based).
    ///
    /// Counts unconditionally; a layer that starts attempts uses
    /// [`enter_attempt`](Self::enter_attempt), which knows when an attempt is already running.
    pub fn begin_attempt(&self) -> u32 {
        self.inner.attempts.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Starts an attempt and returns a guard that ends it when dropped (on success, failure
    /// or cancellation alike).
    ///
    /// An attempt entered inside another of this context that is still running, before any
    /// attempt ended inside it, is the *same* attempt and is not counted again: with two retry
    /// layers stacked, the inner layer's first try runs as the outer layer's attempt, so the
    /// backend below must not see it as a repeat (a write's repeat path would look for an
    /// earlier landing that never happened). The inner layer's own retries, and the outer
    /// layer's next attempt, come after a try ended, and are counted.
    pub fn enter_attempt(&self) -> AttemptGuard {
        let nested = self.inner.open.fetch_add(1, Ordering::Relaxed) > 0;
        let number = if nested && self.inner.fresh.load(Ordering::Relaxed) {
            self.attempt()
        } else {
            self.begin_attempt()
        };
        self.inner.fresh.store(true, Ordering::Relaxed);
        AttemptGuard {
            context: self.clone(),
            number,
        }
    }

    /// Records how an attempt ended: `Some(kind)` if it failed (kept for the next attempt to
    /// read as [`previous_error`](Self::previous_error)), `None` if it succeeded.
    pub fn end_attempt(&self, error: Option<ErrorKind>) {
        if let Some(kind) = error {
            *self.previous() = Some((kind, Instant::now()));
        }
    }

    /// The error kind of the last failed attempt, if one failed.
    pub fn previous_error(&self) -> Option<ErrorKind> {
        self.previous().map(|(kind, _)| kind)
    }

    /// When the last failed attempt ended (Tokio's clock, so paused-time tests see the backoff
    /// they asked for).
    pub fn previous_end(&self) -> Option<Instant> {
        self.previous().map(|(_, end)| end)
    }

    fn previous(&self) -> std::sync::MutexGuard<'_, Option<(ErrorKind, Instant)>> {
        // A panic while holding this lock cannot leave it half-written: the value is `Copy`.
        self.inner
            .previous
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The context of the call running on this task, if a [`scope`](Self::scope) is open.
    pub fn current() -> Option<CallContext> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// The open context, or a new one: what a layer that starts attempts uses.
    pub fn current_or_new() -> CallContext {
        Self::current().unwrap_or_default()
    }

    /// Runs `fut` with this context as the current one.
    ///
    /// ```
    /// use kms_core::CallContext;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let call = CallContext::new();
    /// let id = call.id().to_owned();
    /// let seen = call.scope(async { CallContext::current().map(|c| c.id().to_owned()) }).await;
    /// assert_eq!(seen.as_deref(), Some(id.as_str()));
    /// assert!(CallContext::current().is_none());
    /// # }
    /// ```
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }
}

/// One attempt of a [`CallContext`], open until dropped; see
/// [`CallContext::enter_attempt`].
#[derive(Debug)]
#[must_use = "the attempt ends when the guard is dropped"]
pub struct AttemptGuard {
    context: CallContext,
    number: u32,
}

impl AttemptGuard {
    /// The attempt's number (1-based), shared by nested layers running the same attempt.
    pub fn number(&self) -> u32 {
        self.number
    }
}

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        self.context.inner.fresh.store(false, Ordering::Relaxed);
        self.context.inner.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Default for CallContext {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CallContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallContext")
            .field("id", &self.id())
            .field("attempt", &self.attempt())
            .field("previous_error", &self.previous_error())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex_and_distinct() {
        let a = CallContext::new();
        let b = CallContext::new();
        assert_eq!(a.id().len(), 32);
        assert!(a.id().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.id(), b.id());
    }

    #[tokio::test]
    async fn scope_is_seen_inside_only_and_shares_attempts() {
        assert!(CallContext::current().is_none());
        let call = CallContext::new();
        let outer = call.clone();
        call.scope(async move {
            let inner = CallContext::current().expect("inside the scope");
            assert_eq!(inner.id(), outer.id());
            assert_eq!(inner.begin_attempt(), 1);
            assert_eq!(CallContext::current_or_new().begin_attempt(), 2);
            assert!(outer.is_repeat());
        })
        .await;
        assert!(CallContext::current().is_none());
    }

    #[test]
    fn a_nested_first_try_is_the_same_attempt_and_every_later_try_counts() {
        let call = CallContext::new();
        let outer = call.enter_attempt();
        assert_eq!(outer.number(), 1);
        let inner = call.enter_attempt();
        assert_eq!(
            inner.number(),
            1,
            "the inner layer's first try is the outer attempt"
        );
        assert!(!call.is_repeat());
        let innermost = call.enter_attempt();
        assert_eq!(innermost.number(), 1, "any depth of nesting");
        drop(innermost);
        drop(inner);
        // The inner layer retries after its first try ended: the backend may have seen it.
        let retry = call.enter_attempt();
        assert_eq!(retry.number(), 2);
        let below_retry = call.enter_attempt();
        assert_eq!(
            below_retry.number(),
            2,
            "a layer below the retry runs the same attempt"
        );
        drop(below_retry);
        drop(retry);
        drop(outer);
        assert_eq!(
            call.enter_attempt().number(),
            3,
            "the outer layer's next attempt"
        );
        assert!(call.is_repeat());
    }

    #[tokio::test]
    async fn a_failed_attempt_is_remembered_and_a_success_keeps_it() {
        let call = CallContext::new();
        assert_eq!(call.previous_error(), None);
        call.begin_attempt();
        call.end_attempt(Some(ErrorKind::Timeout));
        assert_eq!(call.previous_error(), Some(ErrorKind::Timeout));
        let ended = call.previous_end().expect("recorded");
        call.begin_attempt();
        call.end_attempt(None);
        assert_eq!(call.previous_error(), Some(ErrorKind::Timeout));
        assert_eq!(call.previous_end(), Some(ended));
    }
}
