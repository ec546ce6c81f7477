//! The [`CacheObserver`] that exports kms-cache's events as Prometheus series.
//!
//! kms-cache reports a read that finds no fresh entry as a miss *before* it knows how the read
//! ends; when the backend then fails and an expired entry is served (stale-if-error) it also
//! reports a stale serve. So `<p>_key_cache_misses_total` counts reads without a fresh entry,
//! stale serves included, and `<p>_key_cache_stale_serves_total` counts those of them the
//! cache still answered: the share of reads the cache answered is
//! `(hits + stale_serves) / (hits + misses)`, which is what the hit-rate alert uses.
//!
//! Each stale serve also feeds the staleness series (`<p>_key_cache_stale_age_seconds`, the
//! largest staleness being served, and the `<p>_key_cache_stale_serve_age_seconds`
//! histogram), and marks the `get` it answers as stale for the service-side decorator above
//! the cache (`stale_mark.rs`), which counts it as `status="stale"`.
//!
//! Reports of credentials refused downstream (`kms_cache::CacheHandle::report_rejected`) are
//! counted in `<p>_key_credential_rejections_total{backend, store, outcome}`, one per report,
//! `outcome` one of `refreshed`, `ignored_unknown`, `rate_limited`, `still_rejected`,
//! `failed` (every series is created at zero with the observer).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kms_cache::{CacheObserver, EvictionCause, Rejection};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use crate::families::KmsMetrics;
use crate::labels::{BackendLabels, EvictionLabels, LoadLabels, RejectionLabels};
use crate::stale_age::StaleAgeGauge;
use crate::stale_mark;
use crate::store_name::{StoreName, store_label};

/// The causes with their own `<p>_key_cache_evictions_total` series, in the order of
/// [`CacheMetrics::evictions`].
const EVICTION_CAUSES: [EvictionCause; 3] = [
    EvictionCause::Expired,
    EvictionCause::Size,
    EvictionCause::Explicit,
];

impl KmsMetrics {
    /// A [`CacheObserver`] feeding the `<p>_key_cache_*` families for `backend` (store label =
    /// the backend label): pass it to `kms_cache::CacheLayer::observer`.
    pub fn cache_observer(&self, backend: &'static str) -> Arc<dyn CacheObserver> {
        self.cache_observer_for(backend, None)
    }

    /// [`cache_observer`](Self::cache_observer) for the store named `store`.
    pub fn cache_observer_for(
        &self,
        backend: &'static str,
        store: Option<&StoreName>,
    ) -> Arc<dyn CacheObserver> {
        let store = store_label(store, backend);
        let b = BackendLabels {
            backend,
            store: store.clone(),
        };
        let f = &self.families;
        let load = |status| {
            f.cache_loads.get_or_create_owned(&LoadLabels {
                backend,
                store: store.clone(),
                status,
            })
        };
        f.health.set_cached(backend, &store);
        Arc::new(CacheMetrics {
            backend,
            store: store.clone(),
            hits: f.cache_hits.get_or_create_owned(&b),
            misses: f.cache_misses.get_or_create_owned(&b),
            stale_serves: f.cache_stale_serves.get_or_create_owned(&b),
            stale_age: f.cache_stale_age.get_or_create_owned(&b),
            staleness: f.cache_staleness.get_or_create_owned(&b),
            loads: load("success"),
            load_failures: load("failure"),
            evictions: EVICTION_CAUSES.map(|cause| {
                f.cache_evictions.get_or_create_owned(&EvictionLabels {
                    backend,
                    store: store.clone(),
                    cause: cause.as_str(),
                })
            }),
            size: f.cache_size.get_or_create_owned(&b),
            rejections: Rejection::LABELS.map(|outcome| {
                f.credential_rejections
                    .get_or_create_owned(&RejectionLabels {
                        backend,
                        store: store.clone(),
                        outcome,
                    })
            }),
            serving_stale: Default::default(),
        })
    }
}

/// Feeds the `<p>_key_cache_*` families of one store.
struct CacheMetrics {
    backend: &'static str,
    store: Arc<str>,
    hits: Counter,
    misses: Counter,
    stale_serves: Counter,
    stale_age: StaleAgeGauge,
    staleness: Histogram,
    loads: Counter,
    load_failures: Counter,
    /// Indexed like `EVICTION_CAUSES`: expired, size, explicit.
    evictions: [Counter; 3],
    size: Gauge,
    /// `<p>_key_credential_rejections_total`, indexed like `Rejection::LABELS`.
    rejections: [Counter; 5],
    /// Whether the cache is serving stale entries now (between the first stale serve and the
    /// next successful load): one warning per outage, not one per read.
    serving_stale: AtomicBool,
}

impl CacheObserver for CacheMetrics {
    fn hit(&self) {
        self.hits.inc();
    }

    fn miss(&self) {
        self.misses.inc();
    }

    fn load(&self, ok: bool) {
        if ok {
            self.loads.inc();
            self.stale_age.fresh();
            if self.serving_stale.swap(false, Ordering::Relaxed) {
                tracing::info!(
                    backend = self.backend,
                    store = &*self.store,
                    "the key backend answers again; the cache stopped serving stale entries"
                );
            }
        } else {
            self.load_failures.inc();
        }
    }

    fn served_stale(&self, expired_for: Duration) {
        stale_mark::mark();
        self.stale_age.served(expired_for);
        self.staleness.observe(expired_for.as_secs_f64());
        self.stale_serve();
    }

    fn stale_serve(&self) {
        self.stale_serves.inc();
        if !self.serving_stale.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                backend = self.backend,
                store = &*self.store,
                "the key backend fails: the cache serves expired entries (stale-if-error) until it answers again"
            );
        }
    }

    fn eviction(&self, cause: EvictionCause) {
        let i = match cause {
            EvictionCause::Expired => 0,
            EvictionCause::Size => 1,
            _ => 2,
        };
        self.evictions[i].inc();
    }

    fn size(&self, entries: u64, _weighted_bytes: u64) {
        self.size.set(i64::try_from(entries).unwrap_or(i64::MAX));
    }

    fn rejection(&self, outcome: Rejection) {
        let label = outcome.as_str();
        if let Some(i) = Rejection::LABELS.iter().position(|l| *l == label) {
            self.rejections[i].inc();
        }
    }
}
