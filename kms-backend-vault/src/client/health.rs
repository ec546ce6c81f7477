//! [`VaultClient::health`]: whether the server, or any node of the cluster, can serve
//! requests (`sys/health`); and the one-node probe the background prober repeats.

use std::time::Duration;

use kms_core::{Error, ErrorKind, Result};
use serde_json::Value;

use super::{Inner, Node, VaultClient, require_runtime};
use crate::BACKEND;
use crate::error_map::{Failure, to_error};

impl VaultClient {
    /// `sys/health` of the server (unauthenticated, no namespace): `Ok` for an active node
    /// (200), a standby (429: it forwards requests to the active node) and a performance
    /// standby (473: it answers reads itself and forwards writes), since all three serve
    /// requests; sealed (503) and uninitialised (501) are [`ErrorKind::Unavailable`]. It says
    /// whether the server can serve, not whether this client's token or mount work:
    /// [`VaultStore`](crate::VaultStore)'s `health` checks those too.
    ///
    /// For a cluster, the nodes are probed in turn (the ones not marked down first) and the
    /// first that serves makes it `Ok`; every probed node's state is updated, as the
    /// background probe does.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`] as above or when unreachable (the message names the address
    /// and the cause), [`ErrorKind::Timeout`], [`ErrorKind::Configuration`] for a server that
    /// does not answer like Vault. For a cluster, the last node's error when none serves.
    pub async fn health(&self) -> Result<()> {
        require_runtime("VaultClient::health")?;
        let mut last = None;
        for i in self.inner.nodes.order(true) {
            let node = &self.inner.nodes.all()[i];
            match self.inner.probe_node(node, self.inner.timeout).await {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::new(ErrorKind::Unavailable, "no Vault node")))
    }
}

impl Inner {
    /// `sys/health` of one node within `timeout`: `Ok(true)` active, `Ok(false)` a serving
    /// standby; the node's state is updated either way.
    pub(super) async fn probe_node(&self, node: &Node, timeout: Duration) -> Result<bool> {
        let result = self.probe_node_inner(node, timeout).await;
        node.mark_probed(result.as_ref().ok().copied());
        result
    }

    async fn probe_node_inner(&self, node: &Node, timeout: Duration) -> Result<bool> {
        let url = self.url(node, "sys/health");
        let what = "health sys/health";
        let resp = self
            .http
            .get(url)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| to_error(self.transport(node, e), what))?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let flag = |name: &str| body.get(name).and_then(Value::as_bool);
        if body.get("initialized").is_none() && !(500..600).contains(&status) {
            return Err(to_error(
                Failure::NotVault(format!(
                    "{} answered HTTP {status} without Vault's health fields: not a Vault \
                     server, or a wrong address",
                    node.address
                )),
                what,
            ));
        }
        let down = |why: &str| {
            Err(Error::new(
                ErrorKind::Unavailable,
                format!("{what}: {}: {why} (HTTP {status})", node.address),
            )
            .with_backend(BACKEND)
            .with_code(status.to_string()))
        };
        if flag("initialized") == Some(false) || status == 501 {
            return down("not initialised");
        }
        if flag("sealed") == Some(true) || status == 503 {
            return down("sealed");
        }
        // A performance standby (473) answers reads itself; a standby (429) forwards this
        // client's requests to the active node: both serve requests.
        match status {
            200 => Ok(true),
            429 | 473 => Ok(false),
            _ => down("unexpected status"),
        }
    }
}
