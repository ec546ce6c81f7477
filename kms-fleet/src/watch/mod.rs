//! One poller per fleet: [`Watcher`](watcher::Watcher) polls while it holds the store's
//! [`lease`].

pub(crate) mod lease;
pub(crate) mod watcher;
