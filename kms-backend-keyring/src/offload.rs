//! Runs blocking keyring work off the caller's executor, bounded in time, on any executor.
//!
//! Inside a Tokio runtime the work runs on its blocking pool (`spawn_blocking`); outside one
//! (plain threads, `futures::executor::block_on`, async-std, smol) on a new OS thread, so no
//! public call needs a Tokio context. The caller waits at most the given deadline, measured by
//! an [`async_io::Timer`], which needs no Tokio time driver either.
//!
//! A keyring call cannot be interrupted once it runs (a D-Bus call, a syscall), so a call the
//! caller stopped waiting for (deadline passed, or its future dropped) keeps its thread until
//! it returns. Such *abandoned* calls are counted per store; once `max_abandoned`
//! (the builder's `max_abandoned_calls`) of them are still running, new calls fail at once
//! with [`ErrorKind::Unavailable`] (marked [`Error::not_applied`]: nothing was started)
//! instead of piling up more stuck threads.
//!
//! The work receives a [`Cancel`] token that is set as soon as the caller stops waiting; the
//! store checks it after waiting for the index lock and before its first write, so nothing is
//! written for a caller that has already left.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use futures_lite::FutureExt as _;
use kms_core::{Error, ErrorKind, Result};

use crate::BACKEND;

/// Set when the caller stopped waiting: the work must not start writing.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Whether the caller has left (timed out or dropped its future).
    pub(crate) fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// [`ErrorKind::Timeout`] if the caller has left, naming `what` was not done, and
    /// [marked](Error::not_applied) as such.
    pub(crate) fn check(&self, what: &str) -> Result<()> {
        if self.is_cancelled() {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!("{what}: the caller stopped waiting before the write; nothing was written"),
            )
            .with_backend(BACKEND)
            .not_applied());
        }
        Ok(())
    }

    fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

const RUNNING: u8 = 0;
const FINISHED: u8 = 1;
const ABANDONED: u8 = 2;

/// The per-store bookkeeping of offloaded calls.
#[derive(Debug)]
pub(crate) struct Offload {
    abandoned: Arc<AtomicUsize>,
    max_abandoned: usize,
}

impl Offload {
    /// At most `max_abandoned` abandoned calls may still be running before new calls fail fast.
    pub(crate) fn new(max_abandoned: usize) -> Self {
        Self {
            abandoned: Arc::new(AtomicUsize::new(0)),
            max_abandoned,
        }
    }

    /// How many calls the callers gave up on are still running.
    pub(crate) fn abandoned(&self) -> usize {
        self.abandoned.load(Ordering::SeqCst)
    }

    /// Runs `work` on a blocking thread and waits for it at most `deadline`.
    ///
    /// # Errors
    ///
    /// `work`'s error; [`ErrorKind::Timeout`] after `deadline` (the work is abandoned, see the
    /// module docs); [`ErrorKind::Unavailable`] when too many abandoned calls still run or no
    /// thread can be started.
    pub(crate) async fn run<T, F>(&self, what: &str, deadline: Duration, work: F) -> Result<T>
    where
        F: FnOnce(&Cancel) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let stuck = self.abandoned();
        if stuck >= self.max_abandoned {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "{what}: {stuck} earlier keyring calls are still running after their callers \
                     gave up (the limit is {}); the keyring daemon or kernel is not answering",
                    self.max_abandoned
                ),
            )
            .with_backend(BACKEND)
            .not_applied());
        }
        let cancel = Cancel::default();
        let state = Arc::new(AtomicU8::new(RUNNING));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = {
            let (cancel, state, abandoned) =
                (cancel.clone(), state.clone(), self.abandoned.clone());
            move || {
                let result = work(&cancel);
                if state.swap(FINISHED, Ordering::SeqCst) == ABANDONED {
                    abandoned.fetch_sub(1, Ordering::SeqCst);
                }
                let _ = tx.send(result);
            }
        };
        spawn(job).map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("{what}: cannot start a thread for the keyring call: {e}"),
            )
            .with_backend(BACKEND)
            .not_applied()
        })?;
        // From here on (no await since the spawn), leaving early (deadline or drop) cancels and
        // counts the call; a job that never started is not counted.
        let _guard = Abandon {
            cancel,
            state,
            abandoned: self.abandoned.clone(),
        };
        let finished = async {
            rx.await.map_err(|_| {
                Error::new(
                    ErrorKind::Backend,
                    format!(
                        "{what}: the keyring call did not run to the end (it panicked, or the \
                         runtime is shutting down)"
                    ),
                )
                .with_backend(BACKEND)
            })?
        };
        let expired = async {
            async_io::Timer::after(deadline).await;
            Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "{what}: the keyring did not answer within {deadline:?} (the call was \
                     abandoned; a write already under way may still complete)"
                ),
            )
            .with_backend(BACKEND))
        };
        finished.or(expired).await
    }
}

/// Marks the call abandoned (and cancels it) unless it finished first.
struct Abandon {
    cancel: Cancel,
    state: Arc<AtomicU8>,
    abandoned: Arc<AtomicUsize>,
}

impl Drop for Abandon {
    fn drop(&mut self) {
        self.cancel.set();
        // Count first, so the worker's decrement can never run before this increment.
        self.abandoned.fetch_add(1, Ordering::SeqCst);
        if self
            .state
            .compare_exchange(RUNNING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            self.abandoned.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Tokio's blocking pool inside a runtime, a new OS thread outside one.
fn spawn(job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            drop(handle.spawn_blocking(job));
            Ok(())
        }
        Err(_) => std::thread::Builder::new()
            .name("kms-keyring".into())
            .spawn(job)
            .map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_without_a_tokio_runtime() {
        let offload = Offload::new(2);
        let v = futures_lite::future::block_on(
            offload.run("t", Duration::from_secs(5), |_| Ok::<_, Error>(7)),
        )
        .unwrap();
        assert_eq!(v, 7);
    }

    #[test]
    fn a_stuck_call_times_out_cancels_and_is_counted_until_it_returns() {
        let offload = Offload::new(1);
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        let e = futures_lite::future::block_on(offload.run(
            "stuck",
            Duration::from_millis(50),
            move |cancel| {
                wait.recv().unwrap();
                seen_tx.send(cancel.is_cancelled()).unwrap();
                Ok(())
            },
        ))
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        assert_eq!(offload.abandoned(), 1);
        // The limit is reached: the next call fails at once and starts no thread.
        let e =
            futures_lite::future::block_on(offload.run("next", Duration::from_secs(5), |_| Ok(())))
                .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.message().contains("still running"), "{e}");
        assert!(e.proves_not_applied(), "nothing was started: {e}");
        release.send(()).unwrap();
        assert!(seen_rx.recv().unwrap(), "the work saw the cancellation");
        // Once the stuck call returns it no longer counts.
        for _ in 0..200 {
            if offload.abandoned() == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(offload.abandoned(), 0);
    }
}
