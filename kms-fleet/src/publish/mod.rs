//! Publish on change: [`Publisher`](publisher::Publisher) sends, [`Published`](published::Published)
//! decorates a store, [`PublishLayer`](layer::PublishLayer) builds it.

pub(crate) mod layer;
pub(crate) mod published;
pub(crate) mod publisher;
