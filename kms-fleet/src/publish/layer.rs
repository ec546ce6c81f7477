//! [`PublishLayer`]: the [`Layer`] that wraps a store in [`Published`].

use std::sync::Arc;

use kms_core::{KeyStore, Layer};

use crate::publish::published::Published;
use crate::publish::publisher::Publisher;

/// Wraps a store so each change that lands through it is published to the fleet.
///
/// Place it directly above the request budget (or the backend), below retry: it then sees
/// each write that reached the backend, once per success.
#[derive(Clone, Debug)]
pub struct PublishLayer {
    publisher: Arc<Publisher>,
}

impl PublishLayer {
    /// A layer publishing through `publisher`.
    pub fn new(publisher: Arc<Publisher>) -> Self {
        Self { publisher }
    }
}

impl Layer for PublishLayer {
    fn layer(&self, inner: Arc<dyn KeyStore>) -> Arc<dyn KeyStore> {
        Arc::new(Published::new(inner, self.publisher.clone()))
    }
}
