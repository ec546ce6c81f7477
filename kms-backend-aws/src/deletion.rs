//! [`Deletion`]: what `remove` does to a secret.

/// What `remove` does to a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deletion {
    /// Schedule deletion after this many days (7–30); until then the secret can be restored
    /// and its name cannot be reused (a `store` fails with
    /// [`ErrorKind::Conflict`](kms_core::ErrorKind::Conflict) unless
    /// [`restore_deleted`](crate::SecretsManagerStoreBuilder::restore_deleted) is on).
    RecoveryWindowDays(u8),
    /// Delete at once, with no recovery (`ForceDeleteWithoutRecovery`).
    Force,
}

impl Default for Deletion {
    /// AWS's default: a 30-day recovery window.
    fn default() -> Self {
        Self::RecoveryWindowDays(30)
    }
}
