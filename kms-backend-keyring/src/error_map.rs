//! The one place where `keyring_core` errors become [`kms_core::Error`]s.

use kms_core::{Error, ErrorKind};
use zeroize::Zeroize;

use crate::BACKEND;

/// Maps a keyring error, raised while doing `what` (e.g. `"reading payments/db"`), to a typed
/// [`kms_core::Error`].
///
/// | keyring error | kind |
/// |---|---|
/// | `NoEntry` | [`ErrorKind::NotFound`] |
/// | `NoStorageAccess` from the kernel keyring's `EACCES`/`EPERM`, or a kernel key of another uid | [`ErrorKind::PermissionDenied`] (not retryable) |
/// | other `NoStorageAccess` | [`ErrorKind::Unavailable`], [marked](Error::not_applied) as a refusal that changed nothing (no or locked default collection, dismissed unlock prompt, no Secret Service on the bus, revoked or invalidated session keyring) |
/// | `PlatformFailure` from a call that did not answer in time | [`ErrorKind::Timeout`] |
/// | `PlatformFailure` from a full kernel key quota (`EDQUOT`) | [`ErrorKind::PermissionDenied`] (not retryable; names the quota) |
/// | other `PlatformFailure` | [`ErrorKind::Unavailable`] |
/// | `BadEncoding`, `BadDataFormat`, `BadStoreFormat` | [`ErrorKind::InvalidData`] (the bytes are zeroized, never shown) |
/// | `TooLong`, `Invalid` | [`ErrorKind::InvalidInput`] |
/// | `Ambiguous` | [`ErrorKind::Conflict`] |
/// | `NoDefaultStore` | [`ErrorKind::Configuration`] |
/// | `NotSupportedByStore` | [`ErrorKind::Unsupported`] |
/// | anything newer | [`ErrorKind::Backend`] |
pub fn to_error(err: keyring_core::Error, what: &str) -> Error {
    use keyring_core::Error as K;
    let (kind, message) = match err {
        K::NoEntry => (
            ErrorKind::NotFound,
            format!("{what}: no such keyring entry"),
        ),
        #[cfg(all(feature = "keyutils", target_os = "linux"))]
        K::NoStorageAccess(e)
            if matches!(
                e.downcast_ref::<linux_keyutils::KeyError>(),
                Some(
                    linux_keyutils::KeyError::AccessDenied
                        | linux_keyutils::KeyError::PermissionDenied
                )
            ) =>
        {
            (
                ErrorKind::PermissionDenied,
                format!(
                    "{what}: the kernel keyring denied access (EACCES/EPERM: the key's or \
                     keyring's permissions, see `keyctl describe`, do not let this process \
                     search, read or write it); retrying will not help"
                ),
            )
        }
        #[cfg(all(feature = "keyutils", target_os = "linux"))]
        K::NoStorageAccess(e) if e.downcast_ref::<crate::keyutils::ForeignKey>().is_some() => {
            (ErrorKind::PermissionDenied, format!("{what}: {e}"))
        }
        // The platform refused the call before changing anything.
        K::NoStorageAccess(e) => {
            return Error::new(
                ErrorKind::Unavailable,
                format!("{what}: the keyring cannot be accessed: {e}"),
            )
            .with_backend(BACKEND)
            .not_applied();
        }
        K::PlatformFailure(e) if e.downcast_ref::<PlatformTimeout>().is_some() => {
            (ErrorKind::Timeout, format!("{what}: {e}"))
        }
        #[cfg(all(feature = "keyutils", target_os = "linux"))]
        K::PlatformFailure(e)
            if matches!(
                e.downcast_ref::<linux_keyutils::KeyError>(),
                Some(linux_keyutils::KeyError::QuotaExceeded)
            ) =>
        {
            (
                ErrorKind::PermissionDenied,
                format!("{what}: {}", quota_message()),
            )
        }
        K::PlatformFailure(e) => (
            ErrorKind::Unavailable,
            format!(
                "{what}: the keyring platform failed (keyring daemon or D-Bus session \
                 unreachable?): {e}"
            ),
        ),
        K::BadEncoding(mut bytes) => {
            bytes.zeroize();
            (
                ErrorKind::InvalidData,
                format!("{what}: the stored data is not valid UTF-8"),
            )
        }
        K::BadDataFormat(mut bytes, e) => {
            bytes.zeroize();
            (
                ErrorKind::InvalidData,
                format!("{what}: the stored data is not in the expected format: {e}"),
            )
        }
        K::BadStoreFormat(why) => (
            ErrorKind::InvalidData,
            format!("{what}: the keyring is not in the expected format: {why}"),
        ),
        K::TooLong(attr, limit) => (
            ErrorKind::InvalidInput,
            format!("{what}: {attr} is longer than the platform limit of {limit}"),
        ),
        K::Invalid(param, why) => (
            ErrorKind::InvalidInput,
            format!("{what}: invalid {param}: {why}"),
        ),
        K::Ambiguous(entries) => (
            ErrorKind::Conflict,
            format!("{what}: {} keyring entries match", entries.len()),
        ),
        K::NoDefaultStore => (
            ErrorKind::Configuration,
            format!("{what}: no keyring credential store is configured"),
        ),
        K::NotSupportedByStore(why) => (
            ErrorKind::Unsupported,
            format!("{what}: not supported by this keyring: {why}"),
        ),
        other => (
            ErrorKind::Backend,
            format!("{what}: keyring error: {other}"),
        ),
    };
    Error::new(kind, message).with_backend(BACKEND)
}

/// A keyring call that did not answer within its timeout (carried in a `PlatformFailure`).
#[derive(Debug)]
pub(crate) struct PlatformTimeout {
    what: &'static str,
    after: std::time::Duration,
}

impl PlatformTimeout {
    #[cfg_attr(not(feature = "secret-service"), allow(dead_code))]
    pub(crate) fn new(what: &'static str, after: std::time::Duration) -> Self {
        Self { what, after }
    }
}

impl std::fmt::Display for PlatformTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} did not answer within {:?} (the keyring daemon is stuck or the bus does not \
             answer)",
            self.what, self.after
        )
    }
}

impl std::error::Error for PlatformTimeout {}

/// The kernel key quota that `EDQUOT` means, with the current limits when readable.
#[cfg(all(feature = "keyutils", target_os = "linux"))]
fn quota_message() -> String {
    let read = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/kernel/keys/{name}"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "?".into())
    };
    format!(
        "the kernel key quota of this user is exhausted (EDQUOT): a non-root user may hold at \
         most {} keys and {} bytes of key data in all its keyrings \
         (/proc/sys/kernel/keys/maxkeys and maxbytes; root: {} keys, {} bytes in root_maxkeys \
         and root_maxbytes); remove keys or raise the quota, retrying will not help",
        read("maxkeys"),
        read("maxbytes"),
        read("root_maxkeys"),
        read("root_maxbytes"),
    )
}
