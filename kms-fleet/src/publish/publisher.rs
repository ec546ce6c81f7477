//! [`Publisher`]: sends the changes of one store to its stream, bounded in time, with an
//! outbox for what could not be sent.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::HeaderMap;
use kms_core::{KeyName, Result};
use parking_lot::Mutex;

use crate::link::{FleetLink, unavailable};
use crate::message::{Change, ChangeKind};
use crate::metrics::PublishOutcome;
use crate::subject::{check_store_id, key_subject};

/// The default bound on one publish: a write waits at most this long for the stream's
/// acknowledgement before it returns and the change goes to the outbox.
pub const DEFAULT_PUBLISH_TIMEOUT: Duration = Duration::from_millis(250);

/// The default number of keys the outbox holds (the latest change of each).
pub const DEFAULT_OUTBOX_CAPACITY: usize = 10_000;

/// How often the outbox is sent again while it holds changes.
const OUTBOX_RETRY: Duration = Duration::from_millis(250);

/// Publishes the changes of one store (cheap to share; one per store per process).
///
/// A publish waits for the stream's acknowledgement at most
/// [`timeout`](PublisherBuilder::timeout). A change that was not acknowledged in time is kept
/// in an outbox (the latest change per key, up to a capacity) and sent again every 250 ms by
/// a background task until it lands, so a writer's change survives a NATS outage as long as
/// its process does. A repeated send of the same change is dropped by the stream (its
/// message id), so "sent twice" costs nothing.
pub struct Publisher {
    link: FleetLink,
    store: String,
    seq: AtomicU64,
    timeout: Duration,
    capacity: usize,
    stream_ready: AtomicBool,
    outbox: Mutex<HashMap<KeyName, Change>>,
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("store", &self.store)
            .field("timeout", &self.timeout)
            .field("outbox", &self.outbox.lock().len())
            .finish_non_exhaustive()
    }
}

/// Settings of a [`Publisher`]; see [`Publisher::builder`].
#[derive(Clone, Debug)]
pub struct PublisherBuilder {
    link: FleetLink,
    store: String,
    timeout: Duration,
    capacity: usize,
}

impl PublisherBuilder {
    /// The longest a publish waits for its acknowledgement (default
    /// [`DEFAULT_PUBLISH_TIMEOUT`]).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many keys the outbox holds (default [`DEFAULT_OUTBOX_CAPACITY`]).
    #[must_use]
    pub fn outbox_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Builds the publisher and starts its outbox task on the current Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`](kms_core::ErrorKind::Configuration) for a bad store id,
    /// a zero timeout or capacity.
    pub fn build(self) -> Result<Arc<Publisher>> {
        check_store_id("fleet.store", &self.store)?;
        if self.timeout.is_zero() {
            return Err(kms_core::Error::configuration(
                "fleet.publish_timeout",
                "must be longer than zero",
            ));
        }
        if self.capacity == 0 {
            return Err(kms_core::Error::configuration(
                "fleet.outbox_capacity",
                "must be at least 1",
            ));
        }
        let publisher = Arc::new(Publisher {
            link: self.link,
            store: self.store,
            seq: AtomicU64::new(0),
            timeout: self.timeout,
            capacity: self.capacity,
            stream_ready: AtomicBool::new(false),
            outbox: Mutex::new(HashMap::new()),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(flush_outbox(Arc::downgrade(&publisher)));
        }
        Ok(publisher)
    }
}

/// Sends the outbox again until the publisher is dropped.
async fn flush_outbox(publisher: Weak<Publisher>) {
    loop {
        tokio::time::sleep(OUTBOX_RETRY).await;
        let Some(publisher) = publisher.upgrade() else {
            return;
        };
        let pending: Vec<Change> = publisher.outbox.lock().values().cloned().collect();
        for change in pending {
            if publisher.send(&change).await.is_ok() {
                let mut outbox = publisher.outbox.lock();
                if outbox
                    .get(&KeyName::new(&change.key).expect("outbox keys are valid names"))
                    .is_some_and(|queued| queued.seq == change.seq)
                {
                    outbox.retain(|_, queued| queued.seq != change.seq);
                }
            } else {
                // Still down: try again next round.
                break;
            }
        }
    }
}

impl Publisher {
    /// A publisher of `store`'s changes over `link`.
    pub fn builder(link: &FleetLink, store: impl Into<String>) -> PublisherBuilder {
        PublisherBuilder {
            link: link.clone(),
            store: store.into(),
            timeout: DEFAULT_PUBLISH_TIMEOUT,
            capacity: DEFAULT_OUTBOX_CAPACITY,
        }
    }

    /// The store id.
    pub fn store(&self) -> &str {
        &self.store
    }

    /// The link.
    pub fn link(&self) -> &FleetLink {
        &self.link
    }

    /// Changes waiting in the outbox now.
    pub fn outbox_len(&self) -> usize {
        self.outbox.lock().len()
    }

    /// Publishes that `key` changed to `version` (or was removed). Never fails: what cannot
    /// be sent within the timeout goes to the outbox (counted as `queued`, or `dropped` when
    /// the outbox is full).
    pub async fn publish(&self, key: &KeyName, version: Option<&str>, kind: ChangeKind) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let change = Change::new(&self.store, key, version, kind, self.link.origin(), seq);
        match tokio::time::timeout(self.timeout, self.send(&change)).await {
            Ok(Ok(())) => {
                // A newer change of the key landed: an older one still queued is moot.
                let mut outbox = self.outbox.lock();
                if outbox.get(key).is_some_and(|queued| queued.seq < seq) {
                    outbox.remove(key);
                }
            }
            Ok(Err(err)) => self.enqueue(key, change, &err.to_string()),
            Err(_) => self.enqueue(key, change, "no acknowledgement in time"),
        }
    }

    fn enqueue(&self, key: &KeyName, change: Change, why: &str) {
        let metrics = self.link.metrics();
        let mut outbox = self.outbox.lock();
        if outbox.len() >= self.capacity && !outbox.contains_key(key) {
            drop(outbox);
            metrics.published(&self.store, PublishOutcome::Dropped);
            tracing::warn!(store = %self.store, %key, why, "fleet publish failed and the outbox is full: change dropped");
            return;
        }
        outbox.insert(key.clone(), change);
        drop(outbox);
        metrics.published(&self.store, PublishOutcome::Queued);
        tracing::debug!(store = %self.store, %key, why, "fleet publish queued");
    }

    /// Sends one change and waits for its acknowledgement (unbounded: callers bound it).
    /// After a failure the stream is looked up (and made) again before the next send: it
    /// may have been lost with a server.
    async fn send(&self, change: &Change) -> Result<()> {
        let sent = self.try_send(change).await;
        if sent.is_err() {
            self.stream_ready.store(false, Ordering::Release);
        }
        sent
    }

    async fn try_send(&self, change: &Change) -> Result<()> {
        if !self.stream_ready.load(Ordering::Acquire) {
            self.link.stream(&self.store).await?;
            self.stream_ready.store(true, Ordering::Release);
        }
        let key = KeyName::new(&change.key)?;
        let subject = key_subject(self.link.prefix(), &self.store, &key);
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", change.msg_id().as_str());
        let ack = self
            .link
            .jetstream()
            .publish_with_headers(subject, headers, change.encode().into())
            .await
            .map_err(|e| unavailable("publish", e))?
            .await
            .map_err(|e| unavailable("publish acknowledgement", e))?;
        self.link.metrics().published(
            &self.store,
            if ack.duplicate {
                PublishOutcome::Duplicate
            } else {
                PublishOutcome::Published
            },
        );
        Ok(())
    }
}
