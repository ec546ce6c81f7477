//! Background token renewal: renews at `renew_fraction` of the lease, logs in again when
//! renewal fails or the lease stops growing, and stops with the last client clone.

use std::time::Duration;

use crate::client::WeakInner;
use crate::error_map::BACKEND;

/// Renews the token at `renew_fraction` of its lease until the client is dropped.
pub(crate) async fn renew_loop(weak: WeakInner) {
    loop {
        let (lease, fraction) = match weak.upgrade() {
            Some(inner) => (inner.token_state().0, inner.renew_fraction()),
            None => return,
        };
        if lease.is_zero() {
            // Non-expiring token (root, or a fixed token with no TTL): nothing to renew.
            return;
        }
        tokio::time::sleep(lease.mul_f64(fraction).max(Duration::from_millis(100))).await;
        let Some(inner) = weak.upgrade() else { return };
        let (_, renewable, _) = inner.token_state();
        let can_login = inner.auth().can_login();
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
