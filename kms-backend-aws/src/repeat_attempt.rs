//! [`RunningWrites`]: a retried attempt of a `store` still in flight is sent at once instead of
//! queueing behind itself.
//!
//! Every write goes through the store's [`WriteOrder`](kms_core::WriteOrder), so it waits for
//! the key's earlier write to finish. When that earlier write is an attempt of the *same*
//! logical write (kms-core's retry layer re-sent it after a timeout above this store), waiting
//! helps nothing: both carry the same `ClientRequestToken`, so AWS applies them at most once,
//! in either order. Waiting would also make every retry time out behind an attempt that is
//! slow to answer. So a repeat is sent at once, on its own task; the running write waits for
//! it before the key's next write starts, so ordering between different writes still holds
//! (a repeat whose first attempt never reached AWS is a real write, and lands before the next).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kms_core::{KeyName, Result};
use tokio::sync::{OwnedRwLockReadGuard, RwLock};

/// The token of the write running on a key, and the lock its repeats hold while they run.
type Running = (String, Arc<RwLock<()>>);

/// The write running on each key.
#[derive(Default)]
pub(crate) struct RunningWrites {
    keys: Mutex<HashMap<KeyName, Running>>,
}

impl RunningWrites {
    fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<KeyName, Running>> {
        // Every change is one insert or remove: a panic cannot leave the map half-written.
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `write`, the key's write under `token`, letting repeats of it join until it is
    /// done; returns once they are done too. Called inside the key's `WriteOrder` slot.
    pub(crate) async fn lead<T>(
        &self,
        key: &KeyName,
        token: &str,
        write: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let lock = Arc::new(RwLock::new(()));
        self.keys()
            .insert(key.clone(), (token.to_owned(), lock.clone()));
        let result = write.await;
        // Waits for the repeats that joined; none can join after this point.
        let _done = lock.write().await;
        let mut keys = self.keys();
        if keys.get(key).is_some_and(|(_, l)| Arc::ptr_eq(l, &lock)) {
            keys.remove(key);
        }
        result
    }

    /// A pass for a repeat of the write running on `key` under `token`, if that is the write
    /// running now and it has not finished: hold it until the repeat is done.
    pub(crate) fn join(&self, key: &KeyName, token: &str) -> Option<OwnedRwLockReadGuard<()>> {
        let keys = self.keys();
        let (running, lock) = keys.get(key)?;
        if running != token {
            return None;
        }
        lock.clone().try_read_owned().ok()
    }

    /// Keys with a write running (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> KeyName {
        KeyName::new("k").unwrap()
    }

    #[tokio::test]
    async fn a_repeat_joins_only_its_own_write_and_the_write_waits_for_it() {
        let running = Arc::new(RunningWrites::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let lead = {
            let running = running.clone();
            tokio::spawn(async move {
                running
                    .lead(&key(), "t1", async {
                        rx.await.unwrap();
                        Ok(1)
                    })
                    .await
            })
        };
        tokio::task::yield_now().await;
        assert!(running.join(&key(), "t2").is_none(), "another write queues");
        let pass = running.join(&key(), "t1").expect("a repeat joins");
        tx.send(()).unwrap();
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert!(!lead.is_finished(), "the write waits for the repeat");
        assert!(
            running.join(&key(), "t1").is_none(),
            "no repeat joins a write that is finishing"
        );
        drop(pass);
        assert_eq!(lead.await.unwrap().unwrap(), 1);
        assert_eq!(running.len(), 0);
        assert!(running.join(&key(), "t1").is_none());
    }
}
