//! The identity of one logical write, carried by every attempt of it.
//!
//! A write that times out may still have landed. When the [`Retry`](crate::Retry) layer (or a
//! caller) sends it again, a backend that keeps versions would otherwise record it twice: AWS
//! Secrets Manager makes a second version and moves `AWSPREVIOUS` onto the first copy of the
//! new value, so a reader in a rotation grace period loses the old password.
//!
//! So one logical `store` or `remove` gets a [`WriteContext`]: a random id made once, and an
//! attempt counter that every attempt bumps. The retry layer opens the context around all of
//! its attempts ([`WriteContext::scope`]); a backend reads it with [`WriteContext::current`]
//! and uses it to make the repeat harmless:
//!
//! | backend | what it does with the context |
//! |---|---|
//! | AWS Secrets Manager | sends [`WriteContext::id`] as the `ClientRequestToken` of `PutSecretValue` / `CreateSecret`; AWS ignores a repeat with the same token and the same value ([PutSecretValue]) |
//! | Vault KV v2 | on a repeated attempt, checks whether an earlier attempt already wrote this value |
//! | [`MemoryStore`](crate::MemoryStore) | a repeat of the last write of a key, with the same id and the same bytes, returns the version the first attempt made |
//!
//! A context opened further out wins: a second retry layer, or a caller who re-sends a write
//! after its own timeout inside one [`WriteContext::scope`], keeps the first id, so every
//! attempt of the whole call is one logical write.
//!
//! The context is a task-local value: it reaches every future polled inside the scope (the
//! layers and the backend below the retry layer), not tasks spawned from it.
//!
//! [PutSecretValue]: https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

tokio::task_local! {
    static CURRENT: WriteContext;
}

/// One logical write: an id every attempt shares, and how many attempts have started.
///
/// Cloning shares the attempt counter.
#[derive(Clone)]
pub struct WriteContext {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    attempts: AtomicU32,
    started: SystemTime,
}

impl WriteContext {
    /// A new logical write with a fresh random id (32 lowercase hex characters, 128 bits), no
    /// attempt started yet.
    pub fn new() -> Self {
        let id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        Self {
            inner: Arc::new(Inner {
                id,
                attempts: AtomicU32::new(0),
                started: SystemTime::now(),
            }),
        }
    }

    /// The write's id: 32 lowercase hex characters, valid as an AWS `ClientRequestToken`
    /// (32 to 64 characters) and as a Vault metadata value.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// How many attempts have started, counting the one running now (1 for the first).
    /// 0 before [`begin_attempt`](Self::begin_attempt) was called.
    pub fn attempt(&self) -> u32 {
        self.inner.attempts.load(Ordering::Relaxed)
    }

    /// Whether an earlier attempt of this write has started, so it may have landed.
    pub fn is_repeat(&self) -> bool {
        self.attempt() > 1
    }

    /// When the logical write began (wall clock), so a backend can tell a version written by
    /// an earlier attempt from an older one.
    pub fn started(&self) -> SystemTime {
        self.inner.started
    }

    /// Counts one more attempt; returns its number (1-based).
    pub fn begin_attempt(&self) -> u32 {
        self.inner.attempts.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The context of the write running on this task, if a [`scope`](Self::scope) is open.
    pub fn current() -> Option<WriteContext> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// The open context, or a new one: what a layer that starts attempts uses.
    pub fn current_or_new() -> WriteContext {
        Self::current().unwrap_or_default()
    }

    /// Runs `fut` with this context as the current one.
    ///
    /// ```
    /// use kms_core::write_id::WriteContext;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let write = WriteContext::new();
    /// let id = write.id().to_owned();
    /// let seen = write.scope(async { WriteContext::current().map(|c| c.id().to_owned()) }).await;
    /// assert_eq!(seen.as_deref(), Some(id.as_str()));
    /// assert!(WriteContext::current().is_none());
    /// # }
    /// ```
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }
}

impl Default for WriteContext {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for WriteContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteContext")
            .field("id", &self.id())
            .field("attempt", &self.attempt())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex_and_distinct() {
        let a = WriteContext::new();
        let b = WriteContext::new();
        assert_eq!(a.id().len(), 32);
        assert!(a.id().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.id(), b.id());
    }

    #[tokio::test]
    async fn scope_is_seen_inside_only_and_shares_attempts() {
        assert!(WriteContext::current().is_none());
        let write = WriteContext::new();
        let outer = write.clone();
        write
            .scope(async move {
                let inner = WriteContext::current().expect("inside the scope");
                assert_eq!(inner.id(), outer.id());
                assert_eq!(inner.begin_attempt(), 1);
                assert_eq!(WriteContext::current_or_new().begin_attempt(), 2);
                assert!(outer.is_repeat());
            })
            .await;
        assert!(WriteContext::current().is_none());
    }
}
