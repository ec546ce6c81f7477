//! [`to_keyring`]: a kernel keyring error as a `keyring_core` error, for the store and the walk.

use linux_keyutils::KeyError;

/// Maps a keyutils error; quota errors keep their type for [`crate::to_error`].
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
