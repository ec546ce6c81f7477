//! [`RotationMetrics`]: counts key rotations, records the last one's time and writes an audit
//! event per rotation, as the [`RotationObserver`] of a `kms_core::rotation::Rotation`.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use kms_core::rotation::{ROTATION_STATUSES, RotationEvent, RotationObserver, RotationOutcome};

use crate::audit::{AUDIT_TARGET, unix_millis};
use crate::families::{Families, KmsMetrics};
use crate::labels::{BackendLabels, RotationLabels};
use crate::store_name::{StoreName, store_label};

/// Feeds the rotation metrics from every rotation it observes:
///
/// - `<p>_key_rotations_total{backend,store,status}`: `status` is `success`, `conflict`
///   (another writer changed the key between the rotation's read and its write; nothing was
///   written) or `failure`;
/// - `<p>_key_last_rotation_timestamp_seconds{backend,store}`: Unix seconds of the last
///   successful rotation;
/// - an audit event (target [`AUDIT_TARGET`], `operation = "rotate"`) with the key, the
///   field, the outcome, the error kind, the version replaced and the version written.
///
/// Labels are bounded as every label of this crate: the backend, the store name the service
/// registered, the status. Never the key: the key is in the audit event, not in a label, so
/// "which key" is a log query and "rotation overdue" alerts on the store's timestamp (and on
/// `<p>_key_age_seconds`, which needs no per-key label either).
///
/// Made by [`KmsMetrics::rotation_observer`]; hand it to
/// `Rotation::observer` (or a `Rotator`'s rotation).
#[derive(Clone)]
pub struct RotationMetrics {
    families: Arc<Families>,
    store: Option<Arc<str>>,
}

impl KmsMetrics {
    /// A [`RotationObserver`] that feeds the rotation metrics and writes audit events, with
    /// the `store` label `store` (default: the backend label, as elsewhere). The
    /// `conflict` and `failure` series of `backend` are created at 0 now, so an alert on
    /// their increase sees the first one.
    pub fn rotation_observer(
        &self,
        backend: &'static str,
        store: Option<&StoreName>,
    ) -> Arc<RotationMetrics> {
        let label = store_label(store, backend);
        for status in ROTATION_STATUSES {
            let _ = self.families.rotations.get_or_create(&RotationLabels {
                backend,
                store: label.clone(),
                status,
            });
        }
        Arc::new(RotationMetrics {
            families: self.families.clone(),
            store: store.map(|_| label),
        })
    }
}

impl RotationObserver for RotationMetrics {
    fn on_rotation(&self, event: &RotationEvent<'_>) {
        let store = self
            .store
            .clone()
            .unwrap_or_else(|| Arc::from(event.backend));
        let status = event.outcome.status();
        self.families
            .rotations
            .get_or_create(&RotationLabels {
                backend: event.backend,
                store: store.clone(),
                status,
            })
            .inc();
        let kind = event.outcome.error_kind().map_or("", |k| k.as_str());
        match &event.outcome {
            RotationOutcome::Rotated { previous, current } => {
                let secs = event
                    .at
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                self.families
                    .last_rotation
                    .get_or_create(&BackendLabels {
                        backend: event.backend,
                        store,
                    })
                    .set(secs);
                tracing::info!(
                    target: AUDIT_TARGET,
                    operation = "rotate",
                    key = event.key.as_str(),
                    field = event.field.unwrap_or(""),
                    backend = event.backend,
                    outcome = status,
                    previous_version = previous.version.as_deref().unwrap_or(""),
                    version = current.version.as_deref().unwrap_or(""),
                    timestamp_ms = unix_millis(),
                    "key rotation audit"
                );
            }
            _ => tracing::warn!(
                target: AUDIT_TARGET,
                operation = "rotate",
                key = event.key.as_str(),
                field = event.field.unwrap_or(""),
                backend = event.backend,
                outcome = status,
                error_kind = kind,
                timestamp_ms = unix_millis(),
                "key rotation audit"
            ),
        }
    }
}

impl std::fmt::Debug for RotationMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotationMetrics")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}
