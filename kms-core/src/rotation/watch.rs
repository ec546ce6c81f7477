//! [`Watch`]: a stream of changes to a key or the keys under a prefix, by polling.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;

use crate::error::{Error, ErrorKind};
use crate::key_name::{KeyName, KeyPrefix};
use crate::secret::{SecretMeta, SecretValue, StoredSecret};
use crate::store::KeyStore;

/// The stream [`Watch::stream`] returns.
pub type WatchStream = Pin<Box<dyn Stream<Item = WatchEvent> + Send + 'static>>;

/// One item of a [`Watch`]: the state of a key, or a failed poll. Holds a value only when
/// the watch was asked for values ([`Watch::with_values`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum WatchEvent {
    /// The key exists with this version: the state at start (`initial`), or a new version
    /// since the last item for it.
    Present {
        /// The key.
        key: KeyName,
        /// The version's metadata.
        meta: SecretMeta,
        /// The value, if the watch was asked for values.
        value: Option<SecretValue>,
        /// Whether this is the state at start rather than a change.
        initial: bool,
    },
    /// The key does not exist: at start (`initial`), or removed since the last item for it.
    Absent {
        /// The key.
        key: KeyName,
        /// Whether this is the state at start rather than a change.
        initial: bool,
    },
    /// A poll failed. Reported once per run of failures of one kind (an outage is one item,
    /// not one per poll); the watch goes on, and the first successful poll after it reports
    /// every change that happened meanwhile.
    Error {
        /// The key whose read failed, or `None` for the listing of a prefix.
        key: Option<KeyName>,
        /// The error (it never holds a value).
        error: Error,
    },
}

impl WatchEvent {
    /// The key the item is about (`None` for a failed listing).
    pub fn key(&self) -> Option<&KeyName> {
        match self {
            Self::Present { key, .. } | Self::Absent { key, .. } => Some(key),
            Self::Error { key, .. } => key.as_ref(),
        }
    }

    /// The error kind of an [`Error`](Self::Error) item.
    pub fn error_kind(&self) -> Option<ErrorKind> {
        match self {
            Self::Error { error, .. } => Some(error.kind()),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
enum Target {
    Key(KeyName),
    Prefix(KeyPrefix),
}

/// A watch of one key or of every key under a prefix: a [`Stream`] of [`WatchEvent`]s.
///
/// It polls the store it is given every [`interval`](Self::interval) (default 5 s), each
/// wait shortened or lengthened at random by up to [`jitter`](Self::jitter) (default 10 %)
/// so a fleet of watchers does not poll in step. A key is read with
/// [`get`](KeyStore::get) and a prefix listed with [`list`](KeyStore::list), through the
/// stack given: over a cache, a poll is a cache read like any other (a hit costs nothing at
/// the backend, and the cache stays what every other reader uses); a change shows once the
/// cache has reloaded the key.
///
/// - The first items are the state at start: for a key, one [`WatchEvent::Present`] or
///   [`WatchEvent::Absent`]; for a prefix, one `Present` per key (sorted; nothing if the
///   prefix is empty), then one item per key that appears, changes or disappears.
/// - A change is a new version id; on stores without version ids (the OS keyring), a
///   different value (compared in constant time; the watch keeps the last value to compare,
///   zeroized when dropped).
/// - A failed poll is one [`WatchEvent::Error`] (once per run of failures of the same kind)
///   and does not end the stream.
/// - Values are read but not handed out unless [`with_values`](Self::with_values) is set.
///
/// The stream ends only when dropped; dropping it stops the polling (it runs no task of its
/// own).
///
/// ```
/// use futures::StreamExt;
/// use kms_core::rotation::{Watch, WatchEvent};
/// use kms_core::{KeyName, KeyStoreExt, MemoryStore};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), kms_core::Error> {
/// let store = Arc::new(MemoryStore::new());
/// store.put("app/token", "one").await?;
/// let mut changes = Watch::key(KeyName::new("app/token")?)
///     .interval(Duration::from_millis(10))
///     .stream(store.clone());
/// assert!(matches!(changes.next().await, Some(WatchEvent::Present { initial: true, .. })));
/// store.put("app/token", "two").await?;
/// match changes.next().await {
///     Some(WatchEvent::Present { meta, initial: false, .. }) => {
///         assert_eq!(meta.version.as_deref(), Some("2"))
///     }
///     other => panic!("{other:?}"),
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Watch {
    target: Target,
    interval: Duration,
    jitter: f64,
    values: bool,
}

impl Watch {
    /// The default time between polls: 5 s.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
    /// The default jitter: each wait is the interval ± up to 10 %.
    pub const DEFAULT_JITTER: f64 = 0.1;

    /// A watch of one key.
    pub fn key(key: KeyName) -> Self {
        Self::new(Target::Key(key))
    }

    /// A watch of every key whose name starts with `prefix` (the store must list).
    pub fn prefix(prefix: KeyPrefix) -> Self {
        Self::new(Target::Prefix(prefix))
    }

    fn new(target: Target) -> Self {
        Self {
            target,
            interval: Self::DEFAULT_INTERVAL,
            jitter: Self::DEFAULT_JITTER,
            values: false,
        }
    }

    /// Time between polls (at least 1 ms).
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How much each wait may differ from the interval, as a fraction of it (0 to 1; 0 polls
    /// exactly every interval).
    #[must_use]
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// Whether [`WatchEvent::Present`] items carry the value (default: no).
    #[must_use]
    pub fn with_values(mut self, values: bool) -> Self {
        self.values = values;
        self
    }

    /// The stream of changes, polling `store` (typically the service's whole stack, cache
    /// included). Polling starts when the stream is first polled.
    pub fn stream<S>(self, store: Arc<S>) -> WatchStream
    where
        S: KeyStore + ?Sized,
    {
        let state = State {
            store,
            watch: self,
            seen: BTreeMap::new(),
            queue: VecDeque::new(),
            polls: 0,
            failing: None,
        };
        Box::pin(futures::stream::unfold(state, |mut state| async move {
            loop {
                if let Some(item) = state.queue.pop_front() {
                    return Some((item, state));
                }
                if state.polls > 0 {
                    tokio::time::sleep(state.wait()).await;
                }
                state.poll().await;
            }
        }))
    }
}

/// What the watch last reported for a key.
enum Seen {
    Version(Arc<str>),
    /// No version id: the value, to compare.
    Value(SecretValue),
}

impl Seen {
    fn of(secret: &StoredSecret) -> Self {
        match &secret.meta.version {
            Some(v) => Self::Version(v.clone()),
            None => Self::Value(secret.value.clone()),
        }
    }

    fn matches(&self, secret: &StoredSecret) -> bool {
        match (self, &secret.meta.version) {
            (Self::Version(a), Some(b)) => a == b,
            (Self::Value(a), None) => *a == secret.value,
            _ => false,
        }
    }
}

struct State<S: ?Sized> {
    store: Arc<S>,
    watch: Watch,
    /// The keys reported present, and how.
    seen: BTreeMap<KeyName, Seen>,
    queue: VecDeque<WatchEvent>,
    /// Successful polls so far (0: the next one reports the state at start).
    polls: u64,
    /// The kind of the failures reported since the last successful poll.
    failing: Option<ErrorKind>,
}

impl<S: KeyStore + ?Sized> State<S> {
    fn wait(&self) -> Duration {
        let base = self.watch.interval.as_secs_f64();
        let spread = base * self.watch.jitter;
        Duration::from_secs_f64((base + spread * (fastrand::f64() * 2.0 - 1.0)).max(0.001))
    }

    async fn poll(&mut self) {
        let initial = self.polls == 0;
        let result = match self.watch.target.clone() {
            Target::Key(key) => self.poll_key(&key, initial).await,
            Target::Prefix(prefix) => self.poll_prefix(&prefix, initial).await,
        };
        match result {
            Ok(()) => {
                self.failing = None;
                self.polls += 1;
            }
            Err((key, error)) => {
                if self.failing != Some(error.kind()) {
                    self.failing = Some(error.kind());
                    self.queue.push_back(WatchEvent::Error { key, error });
                }
            }
        }
    }

    async fn poll_key(
        &mut self,
        key: &KeyName,
        initial: bool,
    ) -> Result<(), (Option<KeyName>, Error)> {
        match self.store.get(key).await {
            Ok(secret) => self.present(key, secret, initial),
            Err(e) if e.is_not_found() => {
                if initial || self.seen.remove(key).is_some() {
                    self.queue.push_back(WatchEvent::Absent {
                        key: key.clone(),
                        initial,
                    });
                }
            }
            Err(e) => return Err((Some(key.clone()), e)),
        }
        Ok(())
    }

    async fn poll_prefix(
        &mut self,
        prefix: &KeyPrefix,
        initial: bool,
    ) -> Result<(), (Option<KeyName>, Error)> {
        let mut names = self.store.list(prefix).await.map_err(|e| (None, e))?;
        names.sort();
        names.dedup();
        // Read every key before reporting anything, so a failed poll reports no half state
        // and the next one reports the changes in full.
        let mut found = Vec::with_capacity(names.len());
        for name in names {
            match self.store.get(&name).await {
                Ok(secret) => found.push((name, secret)),
                // Removed between the listing and the read.
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err((Some(name), e)),
            }
        }
        let gone: Vec<KeyName> = self
            .seen
            .keys()
            .filter(|k| found.binary_search_by(|(n, _)| n.cmp(k)).is_err())
            .cloned()
            .collect();
        for (name, secret) in found {
            self.present(&name, secret, initial);
        }
        for key in gone {
            self.seen.remove(&key);
            self.queue.push_back(WatchEvent::Absent {
                key,
                initial: false,
            });
        }
        Ok(())
    }

    fn present(&mut self, key: &KeyName, secret: StoredSecret, initial: bool) {
        if self.seen.get(key).is_some_and(|s| s.matches(&secret)) {
            return;
        }
        self.seen.insert(key.clone(), Seen::of(&secret));
        self.queue.push_back(WatchEvent::Present {
            key: key.clone(),
            meta: secret.meta,
            value: self.watch.values.then_some(secret.value),
            initial,
        });
    }
}

impl fmt::Debug for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Version(v) => write!(f, "Version({v})"),
            Self::Value(_) => f.write_str("Value([REDACTED])"),
        }
    }
}
