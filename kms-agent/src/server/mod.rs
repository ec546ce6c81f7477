//! Listening: binding the listeners and serving connections on them.

pub mod accept;
pub mod listener;

pub use accept::{ConnectionSettings, accept_loop};
pub use listener::{Accepted, Listener};
