//! [`MetricsRegistry`]: the Prometheus registry the stores' metrics go into.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use kms_metrics::prometheus_client::encoding::text::encode;
use kms_metrics::prometheus_client::registry::Registry;
use kms_metrics::{FailoverMetrics, KmsMetrics};
use parking_lot::Mutex;

/// A Prometheus [`Registry`] and the metric families registered in it, one set per prefix:
/// stores with the same `metrics.prefix` share families (their series differ by the
/// `backend` and `store` labels), so opening many stores never registers a family twice.
///
/// Two stores never share a label set: a store whose `{backend, store}` labels under one
/// prefix are already held by a store with other backend options is refused (a
/// `Configuration` error naming `metrics.store`); the same configuration opened again
/// shares its labels.
///
/// Cheap to clone (shared). [`global`](Self::global) is the one [`crate::open`] and
/// [`Config::open`](crate::Config::open) use; serve it from `/metrics` with
/// [`encode`](Self::encode).
#[derive(Clone, Default)]
pub struct MetricsRegistry {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    registry: Registry,
    families: HashMap<String, KmsMetrics>,
    failover: HashMap<String, FailoverMetrics>,
    /// (prefix, backend label, store label) → the identity of the store holding it.
    label_sets: HashMap<(String, &'static str, String), String>,
}

impl fmt::Debug for MetricsRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.lock();
        let mut prefixes: Vec<&String> = inner.families.keys().collect();
        prefixes.sort();
        f.debug_struct("MetricsRegistry")
            .field("prefixes", &prefixes)
            .finish()
    }
}

impl MetricsRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide registry.
    pub fn global() -> &'static Self {
        static GLOBAL: OnceLock<MetricsRegistry> = OnceLock::new();
        GLOBAL.get_or_init(Self::new)
    }

    /// The families registered under `prefix`, registering them on first use.
    pub fn families(&self, prefix: &str) -> KmsMetrics {
        let mut inner = self.inner.lock();
        let Inner {
            registry, families, ..
        } = &mut *inner;
        families
            .entry(prefix.to_owned())
            .or_insert_with(|| KmsMetrics::register_with_prefix(registry, prefix))
            .clone()
    }

    /// The failover families registered under `prefix`, registering them on first use.
    pub fn failover_families(&self, prefix: &str) -> FailoverMetrics {
        let mut inner = self.inner.lock();
        let Inner {
            registry, failover, ..
        } = &mut *inner;
        failover
            .entry(prefix.to_owned())
            .or_insert_with(|| FailoverMetrics::register_with_prefix(registry, prefix))
            .clone()
    }

    /// Claims the label set `{backend, store}` under `prefix` for the store whose backend
    /// identity is `identity`: true when it is free or already held by the same identity
    /// (the same configuration opened again), false when another store holds it, whose
    /// series would merge with this one's. A claim lasts as long as the registry.
    pub(crate) fn claim(
        &self,
        prefix: &str,
        backend: &'static str,
        store: &str,
        identity: &str,
    ) -> bool {
        let mut inner = self.inner.lock();
        let holder = inner
            .label_sets
            .entry((prefix.to_owned(), backend, store.to_owned()))
            .or_insert_with(|| identity.to_owned());
        holder == identity
    }

    /// Runs `f` on the registry (to register the service's own metrics beside these).
    pub fn with_registry<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        f(&mut self.inner.lock().registry)
    }

    /// The OpenMetrics text exposition of everything registered.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.inner.lock().registry).expect("writing to a String cannot fail");
        out
    }
}
