//! Background token renewal: renews at `renew_fraction` of the lease, logs in again when
//! renewal fails or the lease stops growing, and stops with the last client clone.

use std::sync::{Arc, Weak};
use std::time::Duration;

use kms_core::Result;
use reqwest::Method;
use serde_json::Value;

use super::{Inner, VaultClient};
use crate::BACKEND;
use crate::error_map::{Failure, to_error};

impl VaultClient {
    /// Starts the renewal task (once connected). It holds the client weakly, so it ends with
    /// the last clone; dropping the client also aborts it.
    pub(super) fn start_renewal(&self) {
        let task = tokio::spawn(renew_loop(Arc::downgrade(&self.inner)));
        *self.inner.renewer.lock() = Some(task.abort_handle());
    }
}

/// Renews the token at `renew_fraction` of its lease until the client is dropped.
async fn renew_loop(weak: Weak<Inner>) {
    loop {
        let (lease, fraction) = match weak.upgrade() {
            Some(inner) => (inner.token_state().0, inner.renew_fraction),
            None => return,
        };
        if lease.is_zero() {
            // Non-expiring token (root, or a fixed token with no TTL): nothing to renew.
            return;
        }
        tokio::time::sleep(lease.mul_f64(fraction).max(Duration::from_millis(100))).await;
        let Some(inner) = weak.upgrade() else { return };
        let (_, renewable, _) = inner.token_state();
        let can_login = inner.auth.can_login();
        let renewed = if renewable {
            match inner.renew_self().await {
                // A lease that stopped growing has hit its max TTL: log in afresh instead.
                Ok(new) if new >= lease.mul_f64(0.5) || !can_login => Ok(()),
                Ok(_) => Err(()),
                Err(e) => {
                    tracing::warn!(
                        backend = BACKEND,
                        kind = e.kind().as_str(),
                        "token renewal failed"
                    );
                    Err(())
                }
            }
        } else {
            Err(())
        };
        if renewed.is_err() {
            if !can_login {
                return;
            }
            let seen = inner.token_state().2;
            if let Err(e) = inner.relogin(seen).await {
                tracing::warn!(
                    backend = BACKEND,
                    kind = e.kind().as_str(),
                    "re-login failed"
                );
                drop(inner);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

impl Inner {
    /// The current token's lease, renewability and generation.
    fn token_state(&self) -> (Duration, bool, u64) {
        let t = self.token.read();
        (t.lease, t.renewable, t.generation)
    }

    /// Renews the token; returns the new lease.
    async fn renew_self(&self) -> Result<Duration> {
        let what = "renew auth/token/renew-self";
        let answer = self
            .send(
                &Method::POST,
                "auth/token/renew-self",
                &[],
                Some(&serde_json::json!({})),
            )
            .await
            .map_err(|f| to_error(f, what))?;
        let lease = answer
            .as_ref()
            .and_then(|a| a.get("auth"))
            .and_then(|a| a.get("lease_duration"))
            .and_then(Value::as_u64)
            .ok_or_else(|| to_error(Failure::Malformed("no lease in renewal".into()), what))?;
        let lease = Duration::from_secs(lease);
        self.token.write().lease = lease;
        Ok(lease)
    }
}
