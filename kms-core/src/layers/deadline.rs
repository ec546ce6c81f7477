//! The per-call deadline timer the timeout layer and the breaker's half-open trials share.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Sleep;

/// Polls the deadline timer in `timer`, arming it on the first call: `Ready(None)` once
/// `deadline` has passed. Outside a Tokio runtime there is no timer to arm (creating one would
/// panic with "there is no reactor running"), so the call is not bounded here and this stays
/// `Pending`: the call runs to its own end. (A runtime built without its time driver still
/// panics, as every Tokio timer does.)
pub(super) fn poll_deadline<T>(
    timer: &mut Option<Option<Pin<Box<Sleep>>>>,
    deadline: Duration,
    cx: &mut std::task::Context<'_>,
) -> Poll<Option<T>> {
    let timer = timer.get_or_insert_with(|| {
        tokio::runtime::Handle::try_current()
            .is_ok()
            .then(|| Box::pin(tokio::time::sleep(deadline)))
    });
    match timer {
        Some(timer) => timer.as_mut().poll(cx).map(|()| None),
        None => Poll::Pending,
    }
}
