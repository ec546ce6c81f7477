//! [`KeyutilsScope`]: which kernel keyring holds the keys of a kernel keyring store.

/// Where the kernel keyring store writes its keys, which decides who can read them and how
/// long they live. Chosen with [`KeyringStoreBuilder::keyutils_scope`](crate::KeyringStoreBuilder::keyutils_scope).
///
/// The scope decides where a key can be *found* by description (a search from the session
/// keyring); who may *use* a key is the builder's
/// [`keyutils_access`](crate::KeyringStoreBuilder::keyutils_access) (by default the owning
/// uid only, so a process that inherits the session but switched to another uid cannot, and
/// any process of the uid can read a key by its serial number). Keys vanish on reboot in both
/// scopes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyutilsScope {
    /// The calling process's session keyring (`@s`, see `session-keyring(7)`), the default.
    /// Keys live as long as the session: the login session, the systemd unit, or the
    /// `keyctl session` the process runs in. Other sessions of the same uid do not see them
    /// (unless something links the session keyring elsewhere).
    #[default]
    Session,
    /// The uid's persistent keyring (`keyctl get_persistent @s`, see
    /// `persistent-keyring(7)`), linked into the session keyring. Keys outlive logout: the
    /// persistent keyring expires only after `/proc/sys/kernel/keys/persistent_keyring_expiry`
    /// seconds (3 days by default) without use, and *every* session of the same uid can reach
    /// them (`keyctl get_persistent`).
    Persistent,
}
