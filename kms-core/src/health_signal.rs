//! [`HealthSignal`]: what the layer that watches a backend knows about it, shared with the
//! layers above that can act on it.
//!
//! The whole story is on [`HealthSignal`] (this module is private; the type is re-exported
//! at the crate root).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

/// Whether the backend below a stack is known to be down: written by the layer that watches
/// the backend, read by the layers above it that can do better when they know.
///
/// - **Writer**: `kms_metrics::BackendMonitor` (below the retry layer) marks the signal down
///   when its health probe fails, when an attempt that reached the backend fails the way a
///   circuit breaker counts (timeout, unavailable, rate limited) or when the breaker it follows
///   opens; and up as soon as the backend answers a probe or a call. It is the same truth as
///   its `<p>_key_backend_up` gauge. Get the monitor's signal with
///   `BackendMonitor::health_signal`.
/// - **Reader**: `kms_cache::CacheLayer::health_signal`. While the signal says down, a read of
///   an expired key with a stale value to serve is answered with it at once, instead of
///   waiting the stale-while-revalidate wait for a reload that cannot succeed (the reload
///   still runs in the background, one per key, and its success marks the backend up again).
///
/// A stack built by hand wires the two with one clone (the `kms` facade does it whenever a
/// store has both a cache and metrics):
///
/// ```text
/// let monitor = metrics.backend_monitor().circuit_breaker(&breaker.handle());
/// let cache = CacheLayer::new().stale_if_error(max_stale).health_signal(monitor.health_signal());
/// ```
///
/// Any other watcher may write one ([`mark_down`](Self::mark_down),
/// [`mark_up`](Self::mark_up)). A signal nobody writes stays unknown, and readers behave as
/// if it did not exist. Reading costs one relaxed atomic load; clones share the state.
#[derive(Clone)]
pub struct HealthSignal {
    state: Arc<AtomicU8>,
}

impl Default for HealthSignal {
    fn default() -> Self {
        Self {
            state: Arc::new(AtomicU8::new(UNKNOWN)),
        }
    }
}

impl HealthSignal {
    /// A signal nothing has written yet: neither up nor down.
    pub fn new() -> Self {
        Self::default()
    }

    /// The backend answered (a probe or a call).
    pub fn mark_up(&self) {
        self.state.store(UP, Ordering::Relaxed);
    }

    /// The backend failed to answer: a probe failed, a call failed as unhealthy, or a circuit
    /// breaker in front of it opened.
    pub fn mark_down(&self) {
        self.state.store(DOWN, Ordering::Relaxed);
    }

    /// Whether the backend is known to be down now.
    #[inline]
    pub fn is_down(&self) -> bool {
        self.state.load(Ordering::Relaxed) == DOWN
    }

    /// What is known: `Some(true)` up, `Some(false)` down, `None` before anything was written.
    pub fn is_up(&self) -> Option<bool> {
        match self.state.load(Ordering::Relaxed) {
            UP => Some(true),
            DOWN => Some(false),
            _ => None,
        }
    }

    /// Whether `self` and `other` are the same signal (clones of one another).
    pub fn same_as(&self, other: &HealthSignal) -> bool {
        Arc::ptr_eq(&self.state, &other.state)
    }
}

impl fmt::Debug for HealthSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.is_up() {
            Some(true) => "up",
            Some(false) => "down",
            None => "unknown",
        };
        f.debug_tuple("HealthSignal").field(&state).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_state_that_starts_unknown() {
        let signal = HealthSignal::new();
        let reader = signal.clone();
        assert_eq!(reader.is_up(), None);
        assert!(!reader.is_down());
        signal.mark_down();
        assert!(reader.is_down());
        assert_eq!(reader.is_up(), Some(false));
        assert_eq!(format!("{reader:?}"), r#"HealthSignal("down")"#);
        signal.mark_up();
        assert!(!reader.is_down());
        assert_eq!(reader.is_up(), Some(true));
        assert!(reader.same_as(&signal));
        assert!(!reader.same_as(&HealthSignal::new()));
    }
}
