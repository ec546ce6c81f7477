//! [`Subscriber`]: follows one store's stream and applies each change to a cache.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt;
use kms_cache::CacheHandle;
use kms_core::{Error, Result};
use tokio::task::JoinHandle;

use crate::link::{FleetLink, unavailable};
use crate::message::Change;
use crate::subject::{check_store_id, store_subjects};
use crate::subscribe::apply::{Applier, ApplyMode};

/// The default spread of a full revalidation after a gap: every cached key is checked once,
/// at a random time within it.
pub const DEFAULT_REVALIDATE_JITTER: Duration = Duration::from_secs(2);

/// The default shortest time between two drops or reloads of one key.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Settings of a [`Subscriber`]; see [`Subscriber::builder`].
#[derive(Debug)]
pub struct SubscriberBuilder {
    link: FleetLink,
    store: String,
    cache: CacheHandle,
    mode: ApplyMode,
    min_interval: Duration,
    revalidate_jitter: Duration,
}

impl SubscriberBuilder {
    /// What to do with a key whose version changed (default [`ApplyMode::Drop`]).
    #[must_use]
    pub fn mode(mut self, mode: ApplyMode) -> Self {
        self.mode = mode;
        self
    }

    /// The shortest time between two drops or reloads of one key (default
    /// [`DEFAULT_MIN_INTERVAL`]): a key changed again sooner is handled when the interval is
    /// over, with its latest change.
    #[must_use]
    pub fn min_interval(mut self, interval: Duration) -> Self {
        self.min_interval = interval;
        self
    }

    /// The spread of a full revalidation after a gap (default
    /// [`DEFAULT_REVALIDATE_JITTER`]).
    #[must_use]
    pub fn revalidate_jitter(mut self, jitter: Duration) -> Self {
        self.revalidate_jitter = jitter;
        self
    }

    /// Starts following the stream on the current Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`](kms_core::ErrorKind::Configuration) for a bad store id,
    /// a zero interval, or outside a Tokio runtime.
    pub fn spawn(self) -> Result<Subscriber> {
        check_store_id("fleet.store", &self.store)?;
        if self.min_interval.is_zero() {
            return Err(Error::configuration(
                "fleet.min_interval",
                "must be longer than zero",
            ));
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::configuration("fleet", "a subscriber needs a Tokio runtime"))?;
        let state = Arc::new(State {
            last: AtomicU64::new(0),
            started: AtomicBool::new(false),
            following: AtomicBool::new(false),
        });
        let applier = Arc::new(Applier::new(
            self.cache,
            self.store.clone(),
            self.link.metrics().clone(),
            self.mode,
            self.min_interval,
        ));
        let task = runtime.spawn(run(
            self.link,
            self.store.clone(),
            applier,
            state.clone(),
            self.revalidate_jitter,
        ));
        Ok(Subscriber {
            store: self.store,
            state,
            task,
        })
    }
}

struct State {
    /// The last stream sequence applied (meaningful once `started`).
    last: AtomicU64,
    started: AtomicBool,
    following: AtomicBool,
}

/// A running subscription: stops when dropped.
///
/// It follows `<prefix>.<store>.>` with an ordered consumer from the sequence after the last
/// one it applied. When it (re)starts and the stream no longer holds that sequence (its
/// changes aged out while this process was away), or a delivered sequence skips ahead, or the
/// stream was recreated, it counts a gap and revalidates every cached key, spread over the
/// revalidation jitter. While NATS is down it retries in the background and the cache serves
/// as it would without a fleet: its TTL bounds staleness.
pub struct Subscriber {
    store: String,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("store", &self.store)
            .field("last_sequence", &self.last_sequence())
            .field("following", &self.is_following())
            .finish()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Subscriber {
    /// A subscriber applying `store`'s changes to `cache`.
    pub fn builder(
        link: &FleetLink,
        store: impl Into<String>,
        cache: CacheHandle,
    ) -> SubscriberBuilder {
        SubscriberBuilder {
            link: link.clone(),
            store: store.into(),
            cache,
            mode: ApplyMode::Drop,
            min_interval: DEFAULT_MIN_INTERVAL,
            revalidate_jitter: DEFAULT_REVALIDATE_JITTER,
        }
    }

    /// The last stream sequence applied (0 before the first).
    pub fn last_sequence(&self) -> u64 {
        self.state.last.load(Ordering::Acquire)
    }

    /// Whether it is following the stream now (connected, consumer in place).
    pub fn is_following(&self) -> bool {
        self.state.following.load(Ordering::Acquire)
    }
}

async fn run(
    link: FleetLink,
    store: String,
    applier: Arc<Applier>,
    state: Arc<State>,
    jitter: Duration,
) {
    let mut failures: u32 = 0;
    loop {
        match follow(&link, &store, &applier, &state, jitter).await {
            Ok(()) => failures = 0,
            Err(err) => {
                failures = failures.saturating_add(1);
                tracing::debug!(%store, error = %err, "fleet subscription interrupted; resuming");
            }
        }
        state.following.store(false, Ordering::Release);
        let backoff = 50 * u64::from(failures.min(10));
        tokio::time::sleep(Duration::from_millis(backoff + fastrand::u64(0..50))).await;
    }
}

/// Follows the stream until the consumer fails; `Ok` when the message stream simply ended.
async fn follow(
    link: &FleetLink,
    store: &str,
    applier: &Arc<Applier>,
    state: &State,
    jitter: Duration,
) -> Result<()> {
    let mut stream = link.stream(store).await?;
    let info = stream
        .info()
        .await
        .map_err(|e| unavailable("stream info", e))?;
    let (first, last_in_stream) = (info.state.first_sequence, info.state.last_sequence);
    let start = if state.started.load(Ordering::Acquire) {
        let last = state.last.load(Ordering::Acquire);
        if last > last_in_stream || (last + 1 < first && last_in_stream >= last) {
            // Recreated (its sequence went back) or aged past what this process saw.
            applier.metrics.gap(store);
            applier.revalidate_all(jitter);
            let resume = if last > last_in_stream {
                last_in_stream
            } else {
                first.saturating_sub(1)
            };
            state.last.store(resume, Ordering::Release);
            resume + 1
        } else {
            last + 1
        }
    } else {
        // A new subscriber's cache holds nothing older than now: follow from the end.
        state.last.store(last_in_stream, Ordering::Release);
        state.started.store(true, Ordering::Release);
        last_in_stream + 1
    };
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: store_subjects(link.prefix(), store),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start.max(1),
            },
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable("consumer", e))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| unavailable("consumer messages", e))?;
    state.following.store(true, Ordering::Release);
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| unavailable("consumer", e))?;
        let Ok(info) = message.info() else { continue };
        let seq = info.stream_sequence;
        let last = state.last.load(Ordering::Acquire);
        if seq <= last {
            continue;
        }
        if seq > last + 1 {
            applier.metrics.gap(store);
            applier.revalidate_all(jitter);
        }
        state.last.store(seq, Ordering::Release);
        match Change::decode(&message.payload, store) {
            Ok((change, key)) => applier.apply(change, key),
            Err(reason) => {
                applier.metrics.ignored(store, reason);
                tracing::debug!(%store, %reason, seq, "fleet message ignored");
            }
        }
    }
    Ok(())
}
