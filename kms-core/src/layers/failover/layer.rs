//! [`FailoverLayer`]: the settings and targets of a failover store.

use std::sync::Arc;
use std::time::Duration;

use super::handle::{FailoverHandle, Shared};
use super::selector::Policy;
use super::store::{Failover, Probing};
use super::target::FailoverTarget;
use crate::error::{Error, Result};
use crate::health_signal::HealthSignal;
use crate::layers::breaker::CircuitBreakerHandle;
use crate::layers::floors::VersionFloors;
use crate::layers::layer::Layer;
use crate::store::KeyStore;

/// One logical store over an ordered list of stores: the store it wraps is the **primary**,
/// then the [replicas](Self::replica) (an AWS primary Region and its replica Regions; two
/// Vault clusters kept in sync by `kms migrate`).
///
/// # What it guarantees
///
/// - **Reads** go to the serving target: the primary while it is healthy. A read that fails
///   as unhealthy (unavailable, timeout, rate limited, circuit open) is tried on the next
///   target at once, so callers see no error while any target answers. A target is taken as
///   down when its circuit breaker opens or its health signal says down (the next call
///   switches: within one breaker window), or after [`fail_after`](Self::fail_after)
///   unhealthy failures in a row; reads then go to the first target that is not down.
/// - **Fail-back with hysteresis**: a target that is down is probed (`health`) every
///   [`probe_interval`](Self::probe_interval) while calls arrive, and serves again only after
///   [`fail_back_after`](Self::fail_back_after) successes in a row *and*
///   [`hold_down`](Self::hold_down) without any failure. A flapping primary stays down.
/// - **Writes** (`store`, `store_if_version`, `remove`) go to the primary only, never to a
///   replica (no split brain). While the primary is down they fail with its error, the
///   message saying that writes go to the primary only and which target serves reads.
/// - With [`floors`](Self::floors) (a [`MonotonicLayer`](crate::MonotonicLayer)'s), a
///   target whose answer is older than a version already returned is skipped for that read
///   (the next is asked) and counted ([`FailoverHandle::on_behind`]).
///
/// # What it does not
///
/// - It does not replicate: keeping the targets in sync is the backend's (AWS replication)
///   or an operator's (`kms migrate`) job. A read served by a replica can be older than the
///   primary's latest version (bounded by replication lag) unless floors are set.
/// - It does not make writes available while the primary is down.
/// - `get_version` ids mean the same on every target only where the backend replicates them
///   (AWS replicas do; separate Vault clusters do not).
///
/// Watch it with [`handle`](Self::handle) (the metrics crate exports
/// `<p>_failover_active{store,target}` and `<p>_failovers_total{store}` from it). One layer
/// makes one store: the state is the layer's.
///
/// ```
/// use std::sync::Arc;
/// use kms_core::{FailoverLayer, FailoverTarget, MemoryStore, StoreBuilder};
///
/// let failover = FailoverLayer::new("us-east-1")
///     .replica(FailoverTarget::new("eu-west-1", Arc::new(MemoryStore::new())));
/// let handle = failover.handle();
/// let store = StoreBuilder::new(MemoryStore::new()).layer(failover).build();
/// assert_eq!(store.to_string(), "Failover(Memory, Memory)");
/// assert_eq!(handle.active(), "us-east-1");
/// ```
pub struct FailoverLayer {
    shared: Arc<Shared>,
    replicas: Vec<FailoverTarget>,
    primary_breaker: Option<CircuitBreakerHandle>,
    primary_signal: Option<HealthSignal>,
    floors: Option<VersionFloors>,
    probing: Probing,
}

impl FailoverLayer {
    /// Reference setting: unhealthy failures in a row that take a target down.
    pub const DEFAULT_FAIL_AFTER: u32 = 3;
    /// Reference setting: successes in a row a down target needs to serve again.
    pub const DEFAULT_FAIL_BACK_AFTER: u32 = 3;
    /// Reference setting: how long a down target must go without failure to serve again.
    pub const DEFAULT_HOLD_DOWN: Duration = Duration::from_secs(30);
    /// Reference setting: how often a down target is probed.
    pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(5);
    /// Reference setting: how long one probe may take.
    pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

    /// A failover layer whose primary (the store it wraps) is named `primary` (the `target`
    /// label of its metrics), with the reference settings and no replica yet.
    pub fn new(primary: impl Into<String>) -> Self {
        Self {
            shared: Arc::new(Shared::new(
                Arc::from(primary.into()),
                Policy {
                    fail_after: Self::DEFAULT_FAIL_AFTER,
                    fail_back_after: Self::DEFAULT_FAIL_BACK_AFTER,
                    hold_down: Self::DEFAULT_HOLD_DOWN,
                },
            )),
            replicas: Vec::new(),
            primary_breaker: None,
            primary_signal: None,
            floors: None,
            probing: Probing {
                interval: Self::DEFAULT_PROBE_INTERVAL,
                timeout: Self::DEFAULT_PROBE_TIMEOUT,
            },
        }
    }

    /// Adds a replica, after the ones already added (lower priority).
    #[must_use]
    pub fn replica(mut self, target: FailoverTarget) -> Self {
        self.shared.add_target(target.name.clone());
        self.replicas.push(target);
        self
    }

    /// Renames the primary target.
    #[must_use]
    pub fn primary_name(self, name: impl Into<String>) -> Self {
        self.shared.set_primary_name(Arc::from(name.into()));
        self
    }

    /// Takes the primary as down while this breaker (the one in its stack) is open.
    #[must_use]
    pub fn primary_circuit_breaker(mut self, breaker: &CircuitBreakerHandle) -> Self {
        self.primary_breaker = Some(breaker.clone());
        self
    }

    /// Takes the primary as down while this signal (its backend monitor's) says down.
    #[must_use]
    pub fn primary_health_signal(mut self, signal: HealthSignal) -> Self {
        self.primary_signal = Some(signal);
        self
    }

    /// Skips a target whose answer is older than a version already returned (share a
    /// [`MonotonicLayer`](crate::MonotonicLayer)'s floors).
    #[must_use]
    pub fn floors(mut self, floors: VersionFloors) -> Self {
        self.floors = Some(floors);
        self
    }

    /// Unhealthy failures in a row that take a target down (default 3; at least 1).
    #[must_use]
    pub fn fail_after(self, failures: u32) -> Self {
        self.shared
            .policy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .fail_after = failures;
        self
    }

    /// Successful probes or calls in a row a down target needs to serve again (default 3;
    /// at least 1).
    #[must_use]
    pub fn fail_back_after(self, successes: u32) -> Self {
        self.shared
            .policy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .fail_back_after = successes;
        self
    }

    /// How long a down target must go without any failure before it serves again (default
    /// 30 s).
    #[must_use]
    pub fn hold_down(self, hold_down: Duration) -> Self {
        self.shared
            .policy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .hold_down = hold_down;
        self
    }

    /// How often the targets that are down are probed while calls arrive (default 5 s;
    /// longer than zero).
    #[must_use]
    pub fn probe_interval(mut self, interval: Duration) -> Self {
        self.probing.interval = interval;
        self
    }

    /// How long one probe may take (default 2 s; longer than zero).
    #[must_use]
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.probing.timeout = timeout;
        self
    }

    /// The handle watching the store this layer makes.
    pub fn handle(&self) -> FailoverHandle {
        FailoverHandle {
            shared: self.shared.clone(),
        }
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`](crate::ErrorKind::Configuration) naming the setting:
    /// `replicas` when there is none, a duplicate target name, `fail_after` or
    /// `fail_back_after` of zero, a zero `probe_interval` or `probe_timeout`.
    pub fn validate(&self) -> Result<()> {
        let policy = self.shared.policy();
        if self.replicas.is_empty() {
            return Err(Error::configuration(
                "replicas",
                "a failover store needs at least one replica besides the primary",
            ));
        }
        let names = self.handle().targets();
        for (i, name) in names.iter().enumerate() {
            if name.is_empty() {
                return Err(Error::configuration("targets", "a target name is empty"));
            }
            if names[..i].contains(name) {
                return Err(Error::configuration(
                    "targets",
                    format!("target name {name:?} is used twice"),
                ));
            }
        }
        if policy.fail_after == 0 {
            return Err(Error::configuration("fail_after", "must be 1 or more"));
        }
        if policy.fail_back_after == 0 {
            return Err(Error::configuration("fail_back_after", "must be 1 or more"));
        }
        if self.probing.interval.is_zero() {
            return Err(Error::configuration(
                "probe_interval",
                "must be longer than zero",
            ));
        }
        if self.probing.timeout.is_zero() {
            return Err(Error::configuration(
                "probe_timeout",
                "must be longer than zero",
            ));
        }
        Ok(())
    }

    /// The failover store over `primary` and the replicas.
    pub fn build(&self, primary: Arc<dyn KeyStore>) -> Failover {
        let mut first = FailoverTarget::new(self.handle().targets()[0].clone(), primary);
        first.breaker = self.primary_breaker.clone();
        first.signal = self.primary_signal.clone();
        let mut targets = vec![first];
        targets.extend(self.replicas.iter().cloned());
        Failover::new(
            targets,
            self.shared.clone(),
            self.floors.clone(),
            self.probing,
        )
    }
}

impl std::fmt::Debug for FailoverLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailoverLayer")
            .field("targets", &self.handle().targets())
            .field("policy", &self.shared.policy())
            .field("probing", &self.probing)
            .field("floors", &self.floors)
            .finish()
    }
}

impl Layer for FailoverLayer {
    fn layer(&self, inner: Arc<dyn KeyStore>) -> Arc<dyn KeyStore> {
        Arc::new(self.build(inner))
    }

    fn validate(&self) -> Result<()> {
        FailoverLayer::validate(self)
    }
}
