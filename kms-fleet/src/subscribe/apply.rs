//! What a subscriber does with one change: compare, then drop or reload, at most once per key
//! per interval.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kms_cache::CacheHandle;
use kms_core::KeyName;
use parking_lot::Mutex;

use crate::message::{Change, ChangeKind, now_millis};
use crate::metrics::{ApplyAction, FleetMetrics};

/// How a subscriber acts on a change whose version differs from the cached one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyMode {
    /// Drop the key at once: the next `get` loads it (one load per key however many callers
    /// wait, the cache's single flight). The fastest way to stop serving the old version.
    Drop,
    /// Keep serving the cached version and reload the key after a random delay in
    /// `[0, jitter)`, so a fleet does not reload a key in one burst; the old version is
    /// served for at most that delay.
    Reload {
        /// The largest delay.
        jitter: Duration,
    },
}

/// Whether the cache, holding `held`, is already at or past `version`: the same id, or both
/// numbers (Vault's versions) with the held one not smaller, so a replayed or reordered older
/// change costs nothing.
fn is_current(held: Option<&str>, version: Option<&str>) -> bool {
    match (held, version) {
        (Some(held), Some(version)) => {
            held == version
                || matches!(
                    (held.parse::<u64>(), version.parse::<u64>()),
                    (Ok(h), Ok(v)) if h >= v
                )
        }
        _ => false,
    }
}

/// Applies changes to one cache (shared by the subscriber's tasks).
pub(crate) struct Applier {
    pub(crate) cache: CacheHandle,
    pub(crate) store: String,
    pub(crate) metrics: FleetMetrics,
    pub(crate) mode: ApplyMode,
    pub(crate) min_interval: Duration,
    /// Per key: when it was last dropped or reloaded, and whether a deferred apply is
    /// already scheduled (then a newer change only replaces what it will apply).
    recent: Mutex<HashMap<KeyName, (Instant, Option<Change>)>>,
}

impl Applier {
    pub(crate) fn new(
        cache: CacheHandle,
        store: String,
        metrics: FleetMetrics,
        mode: ApplyMode,
        min_interval: Duration,
    ) -> Self {
        Self {
            cache,
            store,
            metrics,
            mode,
            min_interval,
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Applies `change` to `key`: nothing if the cache is current, else a drop or a reload;
    /// a key dropped less than `min_interval` ago is handled once that interval is over (the
    /// latest change wins), so forged or repeated messages cost at most one reload per key
    /// per interval.
    pub(crate) fn apply(self: &Arc<Self>, change: Change, key: KeyName) {
        let lag = now_millis().saturating_sub(change.at);
        #[allow(clippy::cast_precision_loss)]
        self.metrics.observe_lag(&self.store, lag as f64 / 1000.0);
        let held = self.cache.cached_version(&key);
        if change.kind == ChangeKind::Write
            && let Some(held) = &held
            && is_current(held.as_deref(), change.version.as_deref())
        {
            self.metrics.applied(&self.store, ApplyAction::Current);
            return;
        }
        let now = Instant::now();
        let mut recent = self.recent.lock();
        if let Some((last, pending)) = recent.get_mut(&key)
            && now.duration_since(*last) < self.min_interval
        {
            let scheduled = pending.is_some();
            *pending = Some(change);
            if !scheduled {
                let due = *last + self.min_interval;
                let this = self.clone();
                drop(recent);
                tokio::spawn(async move {
                    tokio::time::sleep_until(due.into()).await;
                    let change = this
                        .recent
                        .lock()
                        .get_mut(&key)
                        .and_then(|(_, pending)| pending.take());
                    if let Some(change) = change {
                        this.recent.lock().remove(&key);
                        this.apply(change, key);
                    }
                });
            }
            return;
        }
        recent.insert(key.clone(), (now, None));
        if recent.len() > 4096 {
            let min = self.min_interval;
            recent.retain(|_, (at, pending)| pending.is_some() || now.duration_since(*at) < min);
        }
        drop(recent);
        self.act(&key, &change, held.is_some());
    }

    fn act(self: &Arc<Self>, key: &KeyName, change: &Change, held: bool) {
        match self.mode {
            ApplyMode::Reload { jitter } if held && change.kind == ChangeKind::Write => {
                let delay = Duration::from_nanos(fastrand::u64(
                    0..u64::try_from(jitter.as_nanos()).unwrap_or(u64::MAX).max(1),
                ));
                let this = self.clone();
                let key = key.clone();
                self.metrics.applied(&self.store, ApplyAction::Reloaded);
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Err(err) = this.cache.refresh(&key).await {
                        tracing::debug!(store = %this.store, %key, error = %err, "fleet reload failed");
                    }
                });
            }
            _ => {
                match (&change.kind, &change.version) {
                    (ChangeKind::Write, Some(version)) => {
                        self.cache.invalidate_unless_version(key, version);
                    }
                    _ => self.cache.invalidate(key),
                }
                self.metrics.applied(&self.store, ApplyAction::Dropped);
            }
        }
    }

    /// Revalidates every cached key, each after a random delay in `[0, jitter)`: after a gap,
    /// when changes may have been missed.
    pub(crate) fn revalidate_all(self: &Arc<Self>, jitter: Duration) {
        let keys = self.cache.cached_keys();
        tracing::info!(store = %self.store, keys = keys.len(), "fleet gap: revalidating every cached key");
        for key in keys {
            let this = self.clone();
            let delay = Duration::from_nanos(fastrand::u64(
                0..u64::try_from(jitter.as_nanos()).unwrap_or(u64::MAX).max(1),
            ));
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Err(err) = this.cache.revalidate(&key).await {
                    tracing::debug!(store = %this.store, %key, error = %err, "fleet revalidation failed; the entry's TTL still bounds it");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_current;

    #[test]
    fn numeric_versions_compare_as_numbers() {
        assert!(is_current(Some("10"), Some("9")));
        assert!(is_current(Some("3"), Some("3")));
        assert!(!is_current(Some("3"), Some("4")));
        assert!(!is_current(Some("a"), Some("b")));
        assert!(is_current(Some("a"), Some("a")));
        assert!(!is_current(None, Some("1")));
        assert!(!is_current(Some("1"), None));
    }
}
