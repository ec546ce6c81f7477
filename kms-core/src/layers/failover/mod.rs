//! Failover: one logical store over an ordered list of stores (a primary and its replicas),
//! reads from the first healthy one, writes to the primary only.
//!
//! The whole story is on [`FailoverLayer`](crate::FailoverLayer) (this module is private;
//! its items are re-exported at the crate root). Files: `layer` (settings, targets),
//! `store` (the decorator), `handle` (what watchers see, the shared state), `target` (one
//! store of the list), `selector` (a leaf: which target serves, with hysteresis).

pub(crate) mod handle;
pub(crate) mod layer;
mod selector;
pub(crate) mod store;
pub(crate) mod target;
