//! [`KeyutilsAccess`]: who may use the kernel keys a kernel keyring store writes.

/// Who may read, overwrite and remove the keys a kernel keyring store
/// ([`KeyringBackend::KeyUtils`](crate::KeyringBackend::KeyUtils)) writes. Chosen with
/// [`KeyringStoreBuilder::keyutils_access`](crate::KeyringStoreBuilder::keyutils_access).
///
/// The kernel checks two sets of rights on a key and adds them up: those of the key's owning
/// uid (`KEY_USR_*`) for processes of that uid, and those of its *possessor* (`KEY_POS_*`) for
/// any process that reaches the key from its own keyrings, whatever its uid. The kernel's
/// default for a new key gives the possessor every right and the owning uid only `view`: a
/// process that switches to another uid but keeps the session keyring (`setpriv`, `su`
/// without a new session, a service dropping privileges) reads every secret in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyutilsAccess {
    /// The default: the boundary is the uid. New keys grant their owning uid view, read,
    /// write, search, link and setattr, and grant nothing to possessors, group or others
    /// (permissions `0x003f0000`): a process of another uid that shares the session keyring
    /// can neither read nor find them. An existing key the store overwrites has its possessor
    /// rights moved to its owning uid first (rights the owner took away stay away). Keys owned by another uid (planted in a keyring this process shares) are
    /// neither read, overwritten nor removed: `PermissionDenied`.
    ///
    /// The cost: the owning uid's rights do not depend on possession, so any process of the
    /// same uid, in any session, can read a key by its serial number (which `/proc/keys`
    /// shows it); only a search by description stays limited to the keyrings the process
    /// possesses. Separate uids, not separate sessions, keep secrets apart.
    #[default]
    Uid,
    /// The kernel's default permissions, untouched (`0x3f010000`: every right to the
    /// possessor, `view` to the owning uid), as `keyctl add` and the `keyring` crate create
    /// them: only processes that possess the key (its session) can read it, whatever their
    /// uid, so a process that switched to another uid keeping the session reads it too; other
    /// sessions of the same uid cannot read it even by serial number. Keys of any owner are
    /// used.
    Possessor,
}
