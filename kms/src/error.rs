//! [`Configuration`](kms_core::ErrorKind::Configuration) errors that name the offending key.

use kms_core::{Error, ErrorKind};

/// A configuration error about `key` (a dotted path such as `stores.payments.cache.ttl`, or
/// the query key of a URI). `what` says what is wrong and what is accepted; it never holds a
/// secret value.
pub(crate) fn config_error(key: &str, what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Configuration, format!("`{key}`: {what}"))
}

/// A configuration error that concerns the whole configuration or URI rather than one key.
pub(crate) fn config_error_at_top(what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Configuration, format!("{what}"))
}

/// Wraps an error a builder returned while applying `key`, keeping its kind only if it is a
/// configuration error (a builder's validation); anything else (a server that cannot be
/// reached during a login, say) keeps its own kind and gets the key as context.
#[cfg_attr(
    not(any(feature = "vault", feature = "aws", feature = "keyring")),
    allow(dead_code)
)]
pub(crate) fn while_applying(key: &str, err: Error) -> Error {
    if err.kind() == ErrorKind::Configuration {
        let mut out = config_error(key, err.message());
        if let Some(backend) = err.backend() {
            out = out.with_backend(backend);
        }
        out
    } else {
        let mut out = Error::new(err.kind(), format!("`{key}`: {}", err.message()));
        if let Some(backend) = err.backend() {
            out = out.with_backend(backend);
        }
        if let Some(code) = err.code() {
            out = out.with_code(code.to_owned());
        }
        out
    }
}

/// A configuration error for the table `table`, whose cargo feature `feature` is not compiled
/// in (the options are still parsed, so a typo is reported the same way whatever the
/// features).
#[cfg(not(all(
    feature = "cache",
    feature = "metrics",
    feature = "envelope",
    feature = "vault",
    feature = "aws",
    feature = "keyring"
)))]
pub(crate) fn not_compiled(key: &str, table: &str, feature: &str) -> Error {
    config_error(
        key,
        format_args!("`{table}` is not compiled in: enable the kms feature `{feature}`"),
    )
}
