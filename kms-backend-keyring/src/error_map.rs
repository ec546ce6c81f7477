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
/// | `NoStorageAccess` | [`ErrorKind::Unavailable`] (locked collection, no session keyring, no D-Bus session) |
/// | `PlatformFailure` | [`ErrorKind::Unavailable`] |
/// | `BadEncoding`, `BadDataFormat`, `BadStoreFormat` | [`ErrorKind::InvalidData`] (the bytes are zeroized, never shown) |
/// | `TooLong`, `Invalid` | [`ErrorKind::InvalidInput`] |
/// | `Ambiguous` | [`ErrorKind::Conflict`] |
/// | `NoDefaultStore` | [`ErrorKind::Configuration`] |
/// | `NotSupportedByStore` | [`ErrorKind::Unsupported`] |
/// | anything newer | [`ErrorKind::Backend`] |
pub fn map_error(err: keyring_core::Error, what: &str) -> Error {
    use keyring_core::Error as K;
    let (kind, message) = match err {
        K::NoEntry => (
            ErrorKind::NotFound,
            format!("{what}: no such keyring entry"),
        ),
        K::NoStorageAccess(e) => (
            ErrorKind::Unavailable,
            format!(
                "{what}: the keyring cannot be accessed (locked collection, no session keyring \
                 or no D-Bus session?): {e}"
            ),
        ),
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
