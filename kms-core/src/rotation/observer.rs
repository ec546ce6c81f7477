//! [`RotationObserver`]: how a rotation reports its outcome to metrics and audit logs without
//! kms-core depending on them.

use std::fmt;
use std::time::SystemTime;

use crate::error::ErrorKind;
use crate::key_name::KeyName;
use crate::secret::SecretMeta;

/// Receives one [`RotationEvent`] per finished [`Rotation::run`](super::Rotation::run).
///
/// kms-metrics implements it (`KmsMetrics::rotation_observer`): the
/// `<p>_key_rotations_total{backend,store,status}` counter, the
/// `<p>_key_last_rotation_timestamp_seconds{backend,store}` gauge and an audit event. A
/// service may implement it too (a notification, its own log).
///
/// Called on the rotating task, after the write's answer, so it must be quick and must not
/// block or panic. A rotation whose future is dropped before the write answers reports
/// nothing: its outcome is not known.
pub trait RotationObserver: Send + Sync + 'static {
    /// A rotation finished.
    fn on_rotation(&self, event: &RotationEvent<'_>);
}

/// What a [`RotationObserver`] is told about one rotation. Holds no secret value.
#[derive(Debug)]
#[non_exhaustive]
pub struct RotationEvent<'a> {
    /// The store's [`backend`](crate::KeyStore::backend) label.
    pub backend: &'static str,
    /// The key rotated.
    pub key: &'a KeyName,
    /// The field rotated, for a multi-field secret.
    pub field: Option<&'a str>,
    /// How it ended.
    pub outcome: RotationOutcome<'a>,
    /// When it ended (wall clock).
    pub at: SystemTime,
}

/// How a rotation ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum RotationOutcome<'a> {
    /// A new version was written.
    Rotated {
        /// The version replaced.
        previous: &'a SecretMeta,
        /// The version written.
        current: &'a SecretMeta,
    },
    /// Another writer changed the key between this rotation's read and its write; nothing
    /// was written ([`ErrorKind::Conflict`]).
    Conflict,
    /// The rotation failed with this kind; nothing is known to have been written unless the
    /// kind says the outcome is unknown (a timeout).
    Failed(ErrorKind),
}

impl RotationOutcome<'_> {
    /// A stable metric label: `"success"`, `"conflict"` or `"failure"`.
    pub const fn status(&self) -> &'static str {
        match self {
            Self::Rotated { .. } => "success",
            Self::Conflict => "conflict",
            Self::Failed(_) => "failure",
        }
    }

    /// The error kind, for a rotation that did not write.
    pub const fn error_kind(&self) -> Option<ErrorKind> {
        match self {
            Self::Rotated { .. } => None,
            Self::Conflict => Some(ErrorKind::Conflict),
            Self::Failed(kind) => Some(*kind),
        }
    }
}

impl fmt::Display for RotationOutcome<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.status())
    }
}

/// Every status [`RotationOutcome::status`] returns (for pre-registering metric label sets).
pub const ROTATION_STATUSES: [&str; 3] = ["success", "conflict", "failure"];
