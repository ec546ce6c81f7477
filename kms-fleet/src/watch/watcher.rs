//! [`Watcher`]: one poller per fleet, detecting changes made outside the library.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use kms_core::{Error, KeyName, KeyPrefix, KeyStore, Result};
use tokio::task::JoinHandle;

use crate::message::ChangeKind;
use crate::publish::publisher::Publisher;
use crate::watch::lease::Lease;

/// The default time between two polls of every watched key.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(30);

/// Which keys a watcher polls.
#[derive(Clone, Debug)]
pub enum Watched {
    /// These keys.
    Keys(Vec<KeyName>),
    /// Every key under this prefix (one `list` per round, then one version check per key).
    Prefix(KeyPrefix),
}

/// Settings of a [`Watcher`]; see [`Watcher::builder`].
#[derive(Debug)]
pub struct WatcherBuilder {
    publisher: Arc<Publisher>,
    store: Arc<dyn KeyStore>,
    watched: Watched,
    interval: Duration,
    lease_ttl: Option<Duration>,
}

impl WatcherBuilder {
    /// The time between two polls (default [`DEFAULT_WATCH_INTERVAL`]).
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// How long the lease outlives a leader that stopped renewing it (default three
    /// intervals, at least 1 s): the longest no watcher polls after the leader dies.
    #[must_use]
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = Some(ttl);
        self
    }

    /// Starts polling on the current Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`](kms_core::ErrorKind::Configuration) for a zero interval,
    /// a lease shorter than the interval, or outside a Tokio runtime.
    pub fn spawn(self) -> Result<Watcher> {
        if self.interval.is_zero() {
            return Err(Error::configuration(
                "fleet.watch_interval",
                "must be longer than zero",
            ));
        }
        let ttl = self
            .lease_ttl
            .unwrap_or_else(|| (self.interval * 3).max(Duration::from_secs(1)));
        if ttl <= self.interval {
            return Err(Error::configuration(
                "fleet.lease_ttl",
                "must be longer than fleet.watch_interval",
            ));
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::configuration("fleet", "a watcher needs a Tokio runtime"))?;
        let state = Arc::new(WatchState::default());
        let lease = Lease::new(
            self.publisher.link().clone(),
            self.publisher.store().to_owned(),
            ttl,
        );
        let task = runtime.spawn(poll(
            self.publisher.clone(),
            self.store,
            self.watched,
            self.interval,
            lease,
            state.clone(),
        ));
        Ok(Watcher {
            store: self.publisher.store().to_owned(),
            state,
            task,
        })
    }
}

#[derive(Default)]
struct WatchState {
    leader: AtomicBool,
    rounds: AtomicU64,
}

/// A running watcher: stops when dropped.
///
/// Each interval it takes or renews the store's lease (an entry of the [`LEASE_BUCKET`](crate::LEASE_BUCKET) key-value bucket); only the holder polls:
/// one version check (a `get`) per watched key, and a publish of each key whose version
/// differs from the last round's (a removed key is published as a removal). Several
/// watchers of one store run for availability; if the holder dies its lease expires and
/// another takes over, publishing each key's version once when it starts (the stream drops
/// repeats of a change published within its duplicate window). Version checks draw from the
/// request budget when the store passed in is budgeted.
pub struct Watcher {
    store: String,
    state: Arc<WatchState>,
    task: JoinHandle<()>,
}

impl fmt::Debug for Watcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watcher")
            .field("store", &self.store)
            .field("leader", &self.is_leader())
            .field("rounds", &self.rounds())
            .finish()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Watcher {
    /// A watcher polling `store` (the store below any cache: each poll must reach the
    /// backend) and publishing what changed through `publisher`.
    pub fn builder(
        publisher: Arc<Publisher>,
        store: Arc<dyn KeyStore>,
        watched: Watched,
    ) -> WatcherBuilder {
        WatcherBuilder {
            publisher,
            store,
            watched,
            interval: DEFAULT_WATCH_INTERVAL,
            lease_ttl: None,
        }
    }

    /// Whether this watcher held the lease at its last round.
    pub fn is_leader(&self) -> bool {
        self.state.leader.load(Ordering::Acquire)
    }

    /// Rounds polled so far (as leader).
    pub fn rounds(&self) -> u64 {
        self.state.rounds.load(Ordering::Acquire)
    }
}

async fn poll(
    publisher: Arc<Publisher>,
    store: Arc<dyn KeyStore>,
    watched: Watched,
    interval: Duration,
    mut lease: Lease,
    state: Arc<WatchState>,
) {
    let mut known: HashMap<KeyName, Option<Arc<str>>> = HashMap::new();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let store_id = publisher.store().to_owned();
    let metrics = publisher.link().metrics().clone();
    loop {
        ticker.tick().await;
        let leader = lease.hold().await;
        let was_leader = state.leader.swap(leader, Ordering::AcqRel);
        if !leader {
            continue;
        }
        if !was_leader {
            // New to the lease: what the previous holder saw is unknown here.
            known.clear();
        }
        let keys = match &watched {
            Watched::Keys(keys) => keys.clone(),
            Watched::Prefix(prefix) => match store.list(prefix).await {
                Ok(keys) => keys,
                Err(err) => {
                    tracing::debug!(store = %store_id, error = %err, "fleet watcher list failed");
                    continue;
                }
            },
        };
        for key in keys {
            metrics.version_check(&store_id);
            match store.get(&key).await {
                Ok(secret) => {
                    let version = secret.meta.version.clone();
                    if known.get(&key) != Some(&version) {
                        publisher
                            .publish(&key, version.as_deref(), ChangeKind::Write)
                            .await;
                        known.insert(key, version);
                    }
                }
                Err(err) if err.is_not_found() => {
                    if known.remove(&key).is_some() {
                        publisher.publish(&key, None, ChangeKind::Remove).await;
                    }
                }
                Err(err) => {
                    tracing::debug!(store = %store_id, %key, error = %err, "fleet version check failed");
                }
            }
        }
        state.rounds.fetch_add(1, Ordering::AcqRel);
    }
}
