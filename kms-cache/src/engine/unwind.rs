//! A load that panics becomes one typed error for each of its waiters.

use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::task::Poll;

use kms_core::{Error, ErrorKind, KeyName, Result, StoredSecret};

/// Polls `load`, turning a panic into a typed [`ErrorKind::Backend`] error (the panic's
/// payload is dropped unread: it could name anything).
pub(crate) async fn unwind_safe(
    load: impl Future<Output = Result<StoredSecret>>,
    key: &KeyName,
    backend: &'static str,
) -> Result<StoredSecret> {
    let mut load = pin!(load);
    poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| load.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(_) => Poll::Ready(Err(Error::new(
                ErrorKind::Backend,
                format!("the load of '{key}' panicked; nothing was cached"),
            )
            .with_backend(backend))),
        },
    )
    .await
}
