//! [`FailoverMetrics`]: which target of a failover store serves, how often it switched, and
//! how many answers were skipped as behind.

use std::sync::Arc;

use kms_core::FailoverHandle;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::families::DEFAULT_PREFIX;

/// `{store, target}`: the failover store's name and a target's name (both chosen in
/// configuration: bounded; never a key name).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    store: Arc<str>,
    target: Arc<str>,
}

/// `{store}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    store: Arc<str>,
}

/// The failover families, registered beside [`KmsMetrics`](crate::KmsMetrics)'s under the
/// same prefix:
///
/// | Metric | Type | Labels | Meaning |
/// |---|---|---|---|
/// | `<p>_failover_active` | gauge | `store`, `target` | 1 for the target serving reads, 0 for the others |
/// | `<p>_failovers_total` | counter | `store` | times the serving target changed (failovers and fail-backs) |
/// | `<p>_failover_behind_skips_total` | counter | `store`, `target` | answers skipped because they were older than a version already returned |
///
/// Cloning is cheap; clones share the families.
#[derive(Clone)]
pub struct FailoverMetrics {
    active: Family<TargetLabels, Gauge>,
    failovers: Family<StoreLabels, Counter>,
    behind: Family<TargetLabels, Counter>,
}

impl FailoverMetrics {
    /// Registers the families in `registry` with the default prefix `kms`.
    pub fn register(registry: &mut Registry) -> Self {
        Self::register_with_prefix(registry, DEFAULT_PREFIX)
    }

    /// Registers the families in `registry` under `prefix` (a sub-registry).
    pub fn register_with_prefix(registry: &mut Registry, prefix: &str) -> Self {
        let metrics = Self {
            active: Family::default(),
            failovers: Family::default(),
            behind: Family::default(),
        };
        let r = registry.sub_registry_with_prefix(prefix);
        r.register(
            "failover_active",
            "1 for the failover target serving reads, 0 for the others",
            metrics.active.clone(),
        );
        r.register(
            "failovers",
            "Times a failover store changed the target serving reads",
            metrics.failovers.clone(),
        );
        r.register(
            "failover_behind_skips",
            "Answers a failover store skipped as older than a version already returned",
            metrics.behind.clone(),
        );
        metrics
    }

    /// Exports the failover store watched by `handle` under the name `store`: sets the
    /// gauges now (every target's series exists from the start) and on every switch.
    pub fn watch(&self, store: &str, handle: &FailoverHandle) {
        let store: Arc<str> = Arc::from(store);
        let targets: Vec<Arc<str>> = handle.targets().into_iter().map(Arc::from).collect();
        let labels = |target: &Arc<str>| TargetLabels {
            store: store.clone(),
            target: target.clone(),
        };
        let active = handle.active();
        for target in &targets {
            self.active
                .get_or_create(&labels(target))
                .set(i64::from(**target == *active));
            drop(self.behind.get_or_create(&labels(target)));
        }
        let failovers = self.failovers.get_or_create_owned(&StoreLabels {
            store: store.clone(),
        });
        let gauges: Vec<(Arc<str>, Gauge)> = targets
            .iter()
            .map(|t| (t.clone(), self.active.get_or_create_owned(&labels(t))))
            .collect();
        handle.on_switch(move |_from, to| {
            failovers.inc();
            for (target, gauge) in &gauges {
                gauge.set(i64::from(&**target == to));
            }
        });
        let behind: Vec<(Arc<str>, Counter)> = targets
            .iter()
            .map(|t| (t.clone(), self.behind.get_or_create_owned(&labels(t))))
            .collect();
        handle.on_behind(move |target| {
            if let Some((_, counter)) = behind.iter().find(|(t, _)| &**t == target) {
                counter.inc();
            }
        });
    }
}

impl std::fmt::Debug for FailoverMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailoverMetrics").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kms_core::{
        ErrorKind, FailoverLayer, FailoverTarget, KeyName, KeyStore, Layer, MemoryStore, Operation,
    };
    use prometheus_client::encoding::text::encode;

    use super::*;

    #[tokio::test]
    async fn the_gauge_follows_the_serving_target_and_switches_are_counted() {
        let mut registry = Registry::default();
        let metrics = FailoverMetrics::register(&mut registry);
        let primary = kms_core::fault::FaultStore::new(MemoryStore::new());
        let faults = primary.handle();
        let replica = Arc::new(MemoryStore::new());
        let key = KeyName::new("k").unwrap();
        replica.store(&key, "v".into()).await.unwrap();
        let layer = FailoverLayer::new("us-east-1")
            .fail_after(1)
            .replica(FailoverTarget::new("eu-west-1", replica));
        metrics.watch("payments", &layer.handle());
        let store = layer.layer(Arc::new(primary));
        let text = || {
            let mut out = String::new();
            encode(&mut out, &registry).unwrap();
            out
        };
        let before = text();
        assert!(
            before.contains(r#"kms_failover_active{store="payments",target="us-east-1"} 1"#),
            "{before}"
        );
        assert!(
            before.contains(r#"kms_failover_active{store="payments",target="eu-west-1"} 0"#),
            "{before}"
        );

        faults.fail_always(Operation::Get, ErrorKind::Unavailable);
        store.get(&key).await.unwrap();
        let after = text();
        assert!(
            after.contains(r#"kms_failover_active{store="payments",target="us-east-1"} 0"#),
            "{after}"
        );
        assert!(
            after.contains(r#"kms_failover_active{store="payments",target="eu-west-1"} 1"#),
            "{after}"
        );
        assert!(
            after.contains(r#"kms_failovers_total{store="payments"} 1"#),
            "{after}"
        );
        assert!(
            after.contains(
                r#"kms_failover_behind_skips_total{store="payments",target="eu-west-1"} 0"#
            ),
            "{after}"
        );
    }
}
