//! [`Layer`]: a value that wraps a store in a decorator (tower's `Layer`, OpenDAL's layers).

use std::sync::Arc;

use crate::error::Result;
use crate::store::KeyStore;

/// Wraps a store in a decorator.
///
/// # Configuration
///
/// A layer checks its settings in [`validate`](Layer::validate), which
/// [`StoreBuilder::try_build`](crate::StoreBuilder::try_build) calls for every layer before building anything: a bad setting
/// is an [`ErrorKind::Configuration`](crate::ErrorKind::Configuration) error naming it, at
/// build time. [`layer`](Layer::layer) itself cannot fail; a layer built with a bad setting
/// anyway (through [`StoreBuilder::build`](crate::StoreBuilder::build) or directly) makes a decorator that answers every
/// call, `health` included, with that same error and never calls the store it wraps, so a
/// misconfigured store never looks like a working or an empty one.
pub trait Layer: Send + Sync {
    /// Returns `inner` wrapped in this layer's decorator.
    fn layer(&self, inner: Arc<dyn KeyStore>) -> Arc<dyn KeyStore>;

    /// Checks this layer's settings (the default: nothing to check).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`](crate::ErrorKind::Configuration) naming the first bad
    /// setting (see [`Error::configuration`](crate::Error::configuration)).
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

impl<F> Layer for F
where
    F: Fn(Arc<dyn KeyStore>) -> Arc<dyn KeyStore> + Send + Sync,
{
    fn layer(&self, inner: Arc<dyn KeyStore>) -> Arc<dyn KeyStore> {
        self(inner)
    }
}
