//! The Tokio runtime the AWS SDK runs on.

use kms_core::{Error, ErrorKind, Result};

/// `Ok` inside a Tokio runtime; else the [`ErrorKind::Configuration`] error every public
/// async path of this crate returns instead of the panic the SDK's HTTP client and timers
/// would raise (they need Tokio's I/O and time drivers: build the runtime with `enable_all`,
/// as `#[tokio::main]` does).
pub(crate) fn require(backend: &'static str, what: &str) -> Result<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Configuration,
        format!(
            "{what}: called outside a Tokio runtime; the AWS SDK runs on Tokio (use \
             #[tokio::main], or Runtime::block_on with a runtime built with enable_all)"
        ),
    )
    .with_backend(backend))
}
