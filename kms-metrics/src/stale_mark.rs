//! How a `get` answered stale reaches the service-side decorator: the cache observer marks
//! it on the thread that serves it, the decorator above reads the mark when the `get` returns.
//!
//! kms-cache serves a stale value inside the `poll` of the `get` that asked for it, and calls
//! its observer ([`CacheObserver::served_stale`](kms_cache::CacheObserver::served_stale))
//! right there; the `Instrumented` decorator polls that `get`'s future from its own `poll`.
//! So a flag on the polling thread, cleared before each poll of the inner future and read
//! when it completes, says whether *this* `get` was answered stale, without a key, a lock or a
//! task-local scope, and costs nothing on a cache hit (answered by `get_now`, never stale).
//! A cache without the observer of the same [`KmsMetrics`](crate::KmsMetrics) never sets it:
//! its stale reads count as `success`, as before the `stale` status existed.

use std::cell::Cell;

thread_local! {
    static SERVED_STALE: Cell<bool> = const { Cell::new(false) };
}

/// The `get` being polled on this thread was answered with a stale value.
pub(crate) fn mark() {
    let _ = SERVED_STALE.try_with(|c| c.set(true));
}

/// Forgets any mark (before polling a `get`, so a mark left by a cache with nothing above it
/// is not read as this one's).
#[inline]
pub(crate) fn clear() {
    let _ = SERVED_STALE.try_with(|c| c.set(false));
}

/// Whether the `get` just polled to completion on this thread was answered stale; clears.
#[inline]
pub(crate) fn take() -> bool {
    SERVED_STALE.try_with(|c| c.replace(false)).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_is_read_once_and_per_thread() {
        clear();
        assert!(!take());
        mark();
        std::thread::spawn(|| assert!(!take())).join().unwrap();
        assert!(take());
        assert!(!take());
        mark();
        clear();
        assert!(!take());
    }
}
