//! The Tokio runtime the AWS SDK runs on.

use std::sync::Mutex;
use std::time::Duration;

use kms_core::{Error, ErrorKind, Result};
use tokio::runtime::{Handle, Id};

/// The last runtime probed for its drivers, and whether it has both.
static PROBED: Mutex<Option<(Id, bool)>> = Mutex::new(None);

/// `Ok` inside a Tokio runtime with its I/O and time drivers; else the
/// [`ErrorKind::Configuration`] error every public async path of this crate returns instead
/// of the panic the SDK's HTTP client and timers would raise (they need both drivers: build
/// the runtime with `enable_all`, as `#[tokio::main]` does).
///
/// Tokio has no call that tells whether a driver is on, so the first call on each runtime
/// probes: it makes a timer and registers a UDP socket on 127.0.0.1, catching the panic a
/// missing driver raises (the panic hook still prints it once, to stderr).
pub(crate) fn require(backend: &'static str, what: &str) -> Result<()> {
    let Ok(handle) = Handle::try_current() else {
        return Err(Error::new(
            ErrorKind::Configuration,
            format!(
                "{what}: called outside a Tokio runtime; the AWS SDK runs on Tokio (use \
                 #[tokio::main], or Runtime::block_on with a runtime built with enable_all)"
            ),
        )
        .with_backend(backend));
    };
    if has_drivers(&handle) {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Configuration,
        format!(
            "{what}: the Tokio runtime has no I/O or no time driver, which the AWS SDK's HTTP \
             client and timers need (build it with enable_all, or enable_io and enable_time)"
        ),
    )
    .with_backend(backend))
}

fn has_drivers(handle: &Handle) -> bool {
    let id = handle.id();
    let mut probed = PROBED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((seen, ok)) = *probed
        && seen == id
    {
        return ok;
    }
    let ok = std::panic::catch_unwind(|| {
        drop(tokio::time::sleep(Duration::ZERO));
        // A socket we cannot make says nothing about the driver: only a panic does.
        if let Ok(socket) = std::net::UdpSocket::bind("127.0.0.1:0")
            && socket.set_nonblocking(true).is_ok()
        {
            drop(tokio::net::UdpSocket::from_std(socket));
        }
    })
    .is_ok();
    *probed = Some((id, ok));
    ok
}
