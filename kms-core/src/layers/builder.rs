//! [`StoreBuilder`]: stacks layers over a backend, written top-down in one expression.

use std::fmt;
use std::sync::Arc;

use super::breaker::CircuitBreakerLayer;
use super::layer::Layer;
use super::retry::RetryLayer;
use super::timeout::TimeoutLayer;
use crate::error::Result;
use crate::store::KeyStore;

/// Builds a stack of decorators over a backend, written top-down in one expression.
///
/// ```
/// use kms_core::{KeyStoreExt, MemoryStore, StoreBuilder, ValidateLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), kms_core::Error> {
/// let store = StoreBuilder::new(MemoryStore::new())
///     .layer(ValidateLayer::new().max_value_len(4096)) // outermost: sees each call first
///     .build();
/// assert_eq!(store.to_string(), "Validate(Memory)");
///
/// store.put("app/token", "t0ken").await?;
/// let too_big = store.put("app/blob", vec![0u8; 5000]).await.unwrap_err();
/// assert_eq!(too_big.kind(), kms_core::ErrorKind::InvalidInput);
/// # Ok(()) }
/// ```
pub struct StoreBuilder {
    backend: Arc<dyn KeyStore>,
    layers: Vec<Box<dyn Layer>>,
}

impl StoreBuilder {
    /// Starts a stack over `backend`.
    pub fn new(backend: impl KeyStore) -> Self {
        Self::from_arc(Arc::new(backend))
    }

    /// Starts a stack over a store that is already shared.
    pub fn from_arc(backend: Arc<dyn KeyStore>) -> Self {
        Self {
            backend,
            layers: Vec::new(),
        }
    }

    /// Adds `layer` below every layer added before it (the first added is outermost).
    #[must_use]
    pub fn layer(mut self, layer: impl Layer + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// Adds `layer` if it is `Some`.
    #[must_use]
    pub fn option_layer(self, layer: Option<impl Layer + 'static>) -> Self {
        match layer {
            Some(layer) => self.layer(layer),
            None => self,
        }
    }

    /// Adds the recommended resilience stack below every layer added so far:
    /// `CircuitBreaker(Retry(Timeout(…)))`.
    ///
    /// The order matters:
    ///
    /// - the **timeout** is innermost, so it bounds each attempt and a hung attempt becomes a
    ///   retryable timeout instead of hanging the whole call;
    /// - the **retry** sits above it and repeats transient failures; when it gives up it marks
    ///   the error exhausted;
    /// - the **breaker** is outermost of the three, so one logical call counts once however
    ///   many attempts it took, and while it is open no attempt (nor backoff sleep) happens.
    ///
    /// Add a cache and metrics *before* calling this, so they sit above the breaker (cache hits
    /// keep working while it is open). Keep a clone of `breaker` (or its
    /// [`handle`](CircuitBreakerLayer::handle)) to read its state.
    ///
    /// ```
    /// use kms_core::{CircuitBreakerLayer, MemoryStore, RetryLayer, StoreBuilder, TimeoutLayer};
    ///
    /// let breaker = CircuitBreakerLayer::new();
    /// let store = StoreBuilder::new(MemoryStore::new())
    ///     .resilience(breaker.clone(), RetryLayer::new(), TimeoutLayer::new())
    ///     .build();
    /// assert_eq!(store.to_string(), "CircuitBreaker(Retry(Timeout(Memory)))");
    /// ```
    #[must_use]
    pub fn resilience(
        self,
        breaker: CircuitBreakerLayer,
        retry: RetryLayer,
        timeout: TimeoutLayer,
    ) -> Self {
        self.layer(breaker).layer(retry).layer(timeout)
    }

    /// [`resilience`](Self::resilience) with the reference settings of every layer.
    #[must_use]
    pub fn default_resilience(self) -> Self {
        self.resilience(
            CircuitBreakerLayer::new(),
            RetryLayer::new(),
            TimeoutLayer::new(),
        )
    }

    /// Checks every layer's settings ([`Layer::validate`]), then builds the stack.
    ///
    /// ```
    /// use kms_core::{CircuitBreakerLayer, ErrorKind, MemoryStore, StoreBuilder};
    ///
    /// // A breaker that could never open: 30 calls needed, only 20 remembered.
    /// let err = StoreBuilder::new(MemoryStore::new())
    ///     .layer(CircuitBreakerLayer::new().min_calls(30))
    ///     .try_build()
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Configuration);
    /// assert!(err.message().contains("min_calls"), "{err}");
    /// ```
    ///
    /// # Errors
    ///
    /// The first layer's [`ErrorKind::Configuration`](crate::ErrorKind::Configuration) error,
    /// outermost first; nothing is built then.
    pub fn try_build(self) -> Result<Arc<dyn KeyStore>> {
        for layer in &self.layers {
            layer.validate()?;
        }
        Ok(self.build())
    }

    /// Builds the stack without checking the layers' settings first: a layer with a bad
    /// setting answers every call with its configuration error (see [`Layer`]). Prefer
    /// [`try_build`](Self::try_build), which reports that error here.
    pub fn build(self) -> Arc<dyn KeyStore> {
        self.layers
            .iter()
            .rev()
            .fold(self.backend, |inner, layer| layer.layer(inner))
    }
}

impl fmt::Debug for StoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreBuilder")
            .field("backend", &format_args!("{}", self.backend))
            .field("layers", &self.layers.len())
            .finish()
    }
}
