//! [`VaultClient::health`]: whether the server can serve requests (`sys/health`).

use kms_core::{Error, ErrorKind, Result};
use serde_json::Value;

use super::{VaultClient, require_runtime};
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
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`] as above or when unreachable (the message names the address
    /// and the cause), [`ErrorKind::Timeout`], [`ErrorKind::Configuration`] for a server that
    /// does not answer like Vault.
    pub async fn health(&self) -> Result<()> {
        require_runtime("VaultClient::health")?;
        let url = self.inner.url("sys/health");
        let what = "health sys/health";
        let resp = self
            .inner
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| to_error(self.inner.transport(e), what))?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let flag = |name: &str| body.get(name).and_then(Value::as_bool);
        if body.get("initialized").is_none() && !(500..600).contains(&status) {
            return Err(to_error(
                Failure::NotVault(format!(
                    "{} answered HTTP {status} without Vault's health fields: not a Vault \
                     server, or a wrong address",
                    self.inner.address
                )),
                what,
            ));
        }
        let down = |why: &str| {
            Err(Error::new(
                ErrorKind::Unavailable,
                format!("{what}: {}: {why} (HTTP {status})", self.inner.address),
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
        if matches!(status, 200 | 429 | 473) {
            return Ok(());
        }
        down("unexpected status")
    }
}
