//! [`FailoverTarget`]: one store of a failover store's ordered list, with what tells the
//! failover store it is down.

use std::fmt;
use std::sync::Arc;

use crate::health_signal::HealthSignal;
use crate::layers::breaker::CircuitBreakerHandle;
use crate::layers::breaker::state::CircuitState;
use crate::store::KeyStore;

/// One store a [`FailoverLayer`](crate::FailoverLayer) may serve reads from: a name (the
/// `target` label of the failover metrics: a Region, a cluster name; never a secret) and the
/// store, usually a whole stack of its own (breaker, retry, timeout over the backend), so its
/// health is its own.
///
/// Besides failed calls and probes, the failover store takes a target as down at once when
/// its [circuit breaker](Self::circuit_breaker) is open or its
/// [health signal](Self::health_signal) says down.
#[derive(Clone)]
pub struct FailoverTarget {
    pub(crate) name: Arc<str>,
    pub(crate) store: Arc<dyn KeyStore>,
    pub(crate) breaker: Option<CircuitBreakerHandle>,
    pub(crate) signal: Option<HealthSignal>,
}

impl FailoverTarget {
    /// A target named `name` over `store`.
    pub fn new(name: impl Into<String>, store: Arc<dyn KeyStore>) -> Self {
        Self {
            name: Arc::from(name.into()),
            store,
            breaker: None,
            signal: None,
        }
    }

    /// Takes the target as down while this breaker (the one in its stack) is open.
    #[must_use]
    pub fn circuit_breaker(mut self, breaker: &CircuitBreakerHandle) -> Self {
        self.breaker = Some(breaker.clone());
        self
    }

    /// Takes the target as down while this signal (its backend monitor's) says down.
    #[must_use]
    pub fn health_signal(mut self, signal: HealthSignal) -> Self {
        self.signal = Some(signal);
        self
    }

    /// The target's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether its breaker or health signal says it is down now.
    pub(crate) fn known_down(&self) -> bool {
        self.breaker
            .as_ref()
            .is_some_and(|b| b.state() == CircuitState::Open)
            || self.signal.as_ref().is_some_and(HealthSignal::is_down)
    }
}

impl fmt::Debug for FailoverTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailoverTarget")
            .field("name", &self.name)
            .field("store", &format_args!("{}", self.store))
            .field("circuit_breaker", &self.breaker.is_some())
            .field("health_signal", &self.signal)
            .finish()
    }
}
