//! [`WriteOrder`]: writes to one key run to completion, one after another, even when their
//!
//! The whole story is on [`WriteOrder`](crate::WriteOrder) (this module is private; its items are re-exported at the crate root).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::error::{Error, ErrorKind, Result};
use crate::key_name::KeyName;

type KeyLock = Arc<tokio::sync::Mutex<()>>;

/// [`WriteOrder`]: writes to one key run to completion, one after another, even when their
/// callers give up.
///
/// A network backend's write that its caller drops (a timeout above it, a `select!`, an HTTP
/// handler whose client left) may already be on the wire: the server can still apply it,
/// *after* a write the same service sends next. The later write is then silently undone by the
/// abandoned one: the key holds a value nobody wrote last.
///
/// A backend runs each `store` and `remove` through [`WriteOrder::run`]:
///
/// - the write waits for the key's earlier write to finish (waiting is cancellation-safe:
///   nothing was sent yet);
/// - it then runs on its own task, so dropping the caller's future does not stop it half-way:
///   it finishes (bounded by the backend's own request timeout) and only then lets the next
///   write to that key start.
///
/// So writes to one key from one store apply in the order their callers issued them, and a
/// dropped write ends before any later one begins, as the conformance suite's cancellation
/// harness checks. Writes to different keys do not wait for each other. Outside a Tokio runtime
/// the write runs on the caller's future (no task to hand it to), still in key order.
///
/// Per-key ordering of a store's writes; see the [module docs](WriteOrder).
#[derive(Default)]
pub struct WriteOrder {
    keys: Arc<Mutex<HashMap<KeyName, KeyLock>>>,
}

impl WriteOrder {
    /// No write in flight.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many keys have a write running or waiting (0 when the store is idle).
    pub fn in_flight(&self) -> usize {
        self.lock().len()
    }

    /// Runs `write` after every earlier write to `key` through this `WriteOrder` has finished,
    /// on its own task, to completion even if the returned future is dropped.
    ///
    /// # Errors
    ///
    /// What `write` returns; [`ErrorKind::Backend`] if it panicked (the panic does not reach
    /// the caller, and the next write to the key runs normally).
    pub async fn run<T, F>(&self, key: &KeyName, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        let lock = self.lock().entry(key.clone()).or_default().clone();
        let release = Release {
            keys: self.keys.clone(),
            key: key.clone(),
            lock: lock.clone(),
        };
        let guard = lock.lock_owned().await;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            let result = write.await;
            drop(guard);
            drop(release);
            return result;
        };
        let task = runtime.spawn(async move {
            let result = write.await;
            drop(guard);
            drop(release);
            result
        });
        task.await.unwrap_or_else(|e| {
            Err(Error::new(
                ErrorKind::Backend,
                if e.is_panic() {
                    "the write panicked; nothing is known about whether it landed"
                } else {
                    "the write's task was cancelled (runtime shutting down)"
                },
            ))
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<KeyName, KeyLock>> {
        // Every change is one insert or remove: a panic cannot leave the map half-written.
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Drops the key's entry when the last write that holds it is done (or never started).
struct Release {
    keys: Arc<Mutex<HashMap<KeyName, KeyLock>>>,
    key: KeyName,
    lock: KeyLock,
}

impl Drop for Release {
    fn drop(&mut self) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        // The map's copy and ours: nobody else is waiting on this key.
        if Arc::strong_count(&self.lock) == 2
            && keys
                .get(&self.key)
                .is_some_and(|l| Arc::ptr_eq(l, &self.lock))
        {
            keys.remove(&self.key);
        }
    }
}

impl fmt::Debug for WriteOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteOrder")
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn key(name: &str) -> KeyName {
        KeyName::new(name).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_write_finishes_before_the_next_one_starts() {
        let order = Arc::new(WriteOrder::new());
        let log = Arc::new(Mutex::new(Vec::new()));
        let k = key("a");
        let first = {
            let log = log.clone();
            order.run(&k, async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                log.lock().unwrap().push("first");
                Ok(())
            })
        };
        // The caller gives up after 100 ms; the write carries on.
        assert!(
            tokio::time::timeout(Duration::from_millis(100), first)
                .await
                .is_err()
        );
        let log2 = log.clone();
        order
            .run(&k, async move {
                log2.lock().unwrap().push("second");
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(*log.lock().unwrap(), ["first", "second"]);
        assert_eq!(order.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn other_keys_do_not_wait() {
        let order = Arc::new(WriteOrder::new());
        let done = Arc::new(AtomicUsize::new(0));
        let slow = {
            let order = order.clone();
            tokio::spawn(async move {
                order
                    .run(&key("slow"), async {
                        tokio::time::sleep(Duration::from_secs(10)).await;
                        Ok(())
                    })
                    .await
            })
        };
        tokio::task::yield_now().await;
        let d = done.clone();
        order
            .run(&key("fast"), async move {
                d.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 1);
        assert_eq!(order.in_flight(), 1, "only the slow key is busy");
        slow.await.unwrap().unwrap();
        assert_eq!(order.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_panicking_write_is_a_backend_error_and_frees_the_key() {
        let order = WriteOrder::new();
        let k = key("p");
        let err = order
            .run::<(), _>(&k, async { panic!("boom") })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Backend);
        assert_eq!(order.in_flight(), 0);
        order.run(&k, async { Ok(()) }).await.unwrap();
    }

    #[test]
    fn runs_inline_without_a_runtime() {
        let order = WriteOrder::new();
        let out = futures_lite_block_on(order.run(&key("x"), async { Ok(7) }));
        assert_eq!(out.unwrap(), 7);
        assert_eq!(order.in_flight(), 0);
    }

    fn futures_lite_block_on<F: Future>(fut: F) -> F::Output {
        // A minimal executor for a future that never waits (no runtime involved).
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut fut = std::pin::pin!(fut);
        loop {
            if let std::task::Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return out;
            }
        }
    }
}
