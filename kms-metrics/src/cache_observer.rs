//! The [`CacheObserver`] that exports kms-cache's events as Prometheus series.

use kms_cache::CacheObserver;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

/// Feeds `<p>_key_cache_hits_total`, `<p>_key_cache_misses_total` and `<p>_key_cache_size`.
pub(crate) struct CacheMetrics {
    pub hits: Counter,
    pub misses: Counter,
    pub size: Gauge,
}

impl CacheObserver for CacheMetrics {
    fn hit(&self) {
        self.hits.inc();
    }
    fn miss(&self) {
        self.misses.inc();
    }
    fn size(&self, entries: u64, _weighted_bytes: u64) {
        self.size.set(i64::try_from(entries).unwrap_or(i64::MAX));
    }
}
