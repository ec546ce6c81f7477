//! Kernel keyring errors as `keyring_core` errors, for the store and the walk: [`to_keyring`]
//! for a call on a key, [`ring_error`] for a keyring that cannot be used, and
//! [`ForeignKey`], a key of another uid.

use linux_keyutils::KeyError;

/// Maps a keyutils error of a call on a key; quota errors keep their type for
/// [`crate::to_error`]. A missing, revoked or expired key is `NoEntry`: only use this where
/// the keyring holding the key is known to be usable (see [`ring_error`]).
pub(crate) fn to_keyring(err: KeyError) -> keyring_core::Error {
    use keyring_core::Error as K;
    match err {
        KeyError::KeyDoesNotExist | KeyError::KeyRevoked | KeyError::KeyExpired => K::NoEntry,
        KeyError::AccessDenied | KeyError::PermissionDenied => K::NoStorageAccess(Box::new(err)),
        KeyError::InvalidDescription => K::Invalid(
            "description".into(),
            "rejected by the kernel keyring".into(),
        ),
        // EINVAL: the kernel refused the arguments (a description or payload it cannot hold);
        // retrying the same call cannot succeed.
        KeyError::InvalidArguments => K::Invalid(
            "argument".into(),
            "rejected by the kernel keyring (EINVAL)".into(),
        ),
        other => K::PlatformFailure(Box::new(other)),
    }
}

/// Maps a keyutils error of a call on the keyring `ring` (e.g. `"the session keyring"`): a
/// missing, revoked or expired *keyring* is a store that cannot be used
/// (`NoStorageAccess`, so `Unavailable`), never a missing entry.
pub(crate) fn ring_error(ring: &'static str, err: KeyError) -> keyring_core::Error {
    match err {
        KeyError::KeyDoesNotExist | KeyError::KeyRevoked | KeyError::KeyExpired => {
            keyring_core::Error::NoStorageAccess(Box::new(UnusableKeyring { ring, err }))
        }
        other => to_keyring(other),
    }
}

/// A keyring that is gone (invalidated), revoked or expired.
#[derive(Debug)]
pub(crate) struct UnusableKeyring {
    ring: &'static str,
    err: KeyError,
}

impl std::fmt::Display for UnusableKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.err {
            KeyError::KeyRevoked => "revoked (EKEYREVOKED)",
            KeyError::KeyExpired => "expired (EKEYEXPIRED)",
            _ => "gone (ENOKEY: invalidated or never created)",
        };
        write!(
            f,
            "{} is {state}, so no key can be read or written through it; start the process in \
             a new session keyring (`keyctl session -`, or `keyctl new_session` in its parent)",
            self.ring
        )
    }
}

impl std::error::Error for UnusableKeyring {}

/// A key whose owning uid is not the process's: put into a keyring this process shares by
/// another user. With [`KeyutilsAccess::Uid`](crate::KeyutilsAccess::Uid) the store neither
/// reads, overwrites nor removes it.
#[derive(Debug)]
pub(crate) struct ForeignKey {
    pub(crate) owner: u32,
    pub(crate) me: u32,
}

impl std::fmt::Display for ForeignKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the kernel key belongs to uid {}, not to this process's uid {} (another user put \
             it into a keyring this process shares); with KeyutilsAccess::Uid the store \
             neither reads, overwrites nor removes another uid's keys: remove it with `keyctl \
             unlink`, or run each uid in its own session keyring",
            self.owner, self.me
        )
    }
}

impl std::error::Error for ForeignKey {}
