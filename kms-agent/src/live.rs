//! [`Live`]: what every request reads: the current [`Snapshot`] (swapped whole by a reload),
//! the metric families, the open-connection count, and the prefetch and reload status.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use serde::Serialize;

use crate::metrics::AgentMetrics;
use crate::snapshot::{Changes, Snapshot};

/// Looks up an environment variable (the process environment, or a map in tests).
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Re-reads and applies the configuration (what SIGHUP does), for the reload endpoint: set
/// by the running agent, which owns the configuration file.
pub type ReloadHook = Arc<dyn Fn() -> BoxFuture<'static, kms::Result<Changes>> + Send + Sync>;

/// Where the prefetch is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PrefetchStatus {
    /// Nothing to prefetch.
    Off,
    /// Not finished: not ready yet.
    Pending,
    /// Finished (some secrets may have failed: the count says).
    Done {
        /// Secrets read.
        fetched: usize,
        /// Secrets that could not be read.
        failed: usize,
    },
}

/// The last reload's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReloadStatus {
    /// Whether it was applied.
    pub ok: bool,
    /// Why not (a configuration error names the key, never a value).
    pub error: Option<String>,
    /// When, in Unix seconds.
    pub at: u64,
}

/// The agent's shared state.
pub struct Live {
    snapshot: ArcSwap<Snapshot>,
    metrics: AgentMetrics,
    registry: kms::MetricsRegistry,
    opener: kms::Opener,
    env: EnvLookup,
    connections: AtomicUsize,
    prefetch: Mutex<PrefetchStatus>,
    last_reload: Mutex<Option<ReloadStatus>>,
    reload_hook: std::sync::OnceLock<ReloadHook>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("generation", &self.snapshot.load().generation)
            .field("connections", &self.connections())
            .finish_non_exhaustive()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Live {
    /// Shared state around a first snapshot.
    pub fn new(
        snapshot: Snapshot,
        metrics: AgentMetrics,
        registry: kms::MetricsRegistry,
        opener: kms::Opener,
        env: EnvLookup,
    ) -> Self {
        Self {
            snapshot: ArcSwap::from_pointee(snapshot),
            metrics,
            registry,
            opener,
            env,
            connections: AtomicUsize::new(0),
            prefetch: Mutex::new(PrefetchStatus::Off),
            last_reload: Mutex::new(None),
            reload_hook: std::sync::OnceLock::new(),
        }
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Swaps in a new snapshot.
    pub fn replace(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
    }

    /// The agent's metric families.
    pub fn metrics(&self) -> &AgentMetrics {
        &self.metrics
    }

    /// The registry the stores and the agent register in.
    pub fn registry(&self) -> &kms::MetricsRegistry {
        &self.registry
    }

    /// The opener stores are built with.
    pub fn opener(&self) -> &kms::Opener {
        &self.opener
    }

    /// The environment lookup.
    pub fn env(&self) -> &EnvLookup {
        &self.env
    }

    /// Open client connections on the API listeners that have sent a request (what
    /// `max_conn` counts).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Counts a connection until the guard is dropped.
    pub fn connection(self: &Arc<Self>) -> ConnectionGuard {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.metrics.connections().inc();
        ConnectionGuard { live: self.clone() }
    }

    /// The prefetch status.
    pub fn prefetch(&self) -> PrefetchStatus {
        *self.prefetch.lock()
    }

    /// Sets the prefetch status.
    pub fn set_prefetch(&self, status: PrefetchStatus) {
        *self.prefetch.lock() = status;
    }

    /// Sets what [`reload`](Self::reload) runs (once; later calls are ignored).
    pub fn set_reload_hook(&self, hook: ReloadHook) {
        let _ = self.reload_hook.set(hook);
    }

    /// Re-reads and applies the configuration, as SIGHUP does.
    ///
    /// # Errors
    ///
    /// Why the new configuration was refused (the previous one keeps serving);
    /// [`Unsupported`](kms::ErrorKind::Unsupported) when no agent owns a configuration file.
    pub async fn reload(&self) -> kms::Result<Changes> {
        match self.reload_hook.get() {
            Some(hook) => hook().await,
            None => Err(kms::Error::unsupported(
                "a reload without a configuration file",
            )),
        }
    }

    /// The last reload's outcome (`None` before any).
    pub fn last_reload(&self) -> Option<ReloadStatus> {
        self.last_reload.lock().clone()
    }

    /// Records a reload's outcome (and counts it).
    pub fn record_reload(&self, result: Result<(), String>) {
        self.metrics.reload(result.is_ok());
        *self.last_reload.lock() = Some(ReloadStatus {
            ok: result.is_ok(),
            error: result.err(),
            at: unix_now(),
        });
    }
}

/// Counts one open connection; the count drops with it.
#[derive(Debug)]
pub struct ConnectionGuard {
    live: Arc<Live>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.live.connections.fetch_sub(1, Ordering::Relaxed);
        self.live.metrics.connections().dec();
    }
}
