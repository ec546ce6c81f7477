//! The secrets engines this crate speaks: KV (v1 or v2) for [`VaultStore`](crate::VaultStore),
//! Transit for [`VaultTransitProvider`](crate::VaultTransitProvider).

/// The KV secrets-engine version of the mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KvVersion {
    /// KV v1: one value per key, no versions, no metadata.
    V1,
    /// KV v2 (the default): versions, metadata, check-and-set.
    #[default]
    V2,
}

/// The engine a mount must be (what the mount check compares against).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Engine {
    /// A KV mount of this version.
    Kv(KvVersion),
    /// A Transit mount.
    Transit,
}
