//! The background probe of a cluster's nodes: every `probe_interval`, `sys/health` of each
//! node, so a node marked down is used again once it serves, and writes go straight to the
//! node that is active now. Runs only for a cluster (more than one address); stops with the
//! last client clone.

use std::sync::{Arc, Weak};

use super::{Inner, VaultClient};

impl VaultClient {
    /// Starts the probe task for a cluster (once connected). It holds the client weakly, so
    /// it ends with the last clone; dropping the client also aborts it.
    pub(super) fn start_probing(&self) {
        if !self.inner.nodes.is_cluster() {
            return;
        }
        let task = tokio::spawn(probe_loop(Arc::downgrade(&self.inner)));
        *self.inner.prober.lock() = Some(task.abort_handle());
    }
}

/// Probes every node each interval, each probe bounded by the smaller of the interval and
/// the request timeout, until the client is dropped.
async fn probe_loop(weak: Weak<Inner>) {
    loop {
        let interval = match weak.upgrade() {
            Some(inner) => inner.probe_interval,
            None => return,
        };
        tokio::time::sleep(interval).await;
        let Some(inner) = weak.upgrade() else { return };
        let timeout = interval.min(inner.timeout);
        for node in inner.nodes.all() {
            let was_down = node.is_down();
            let result = inner.probe_node(node, timeout).await;
            if was_down && result.is_ok() {
                tracing::info!(
                    backend = crate::BACKEND,
                    node = %node.address,
                    "Vault node serves again"
                );
            }
        }
    }
}
