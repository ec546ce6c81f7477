//! Composition: [`Layer`]s and the [`StoreBuilder`] that stacks them over a backend.
//!
//! A decorator is a [`KeyStore`] that wraps another one (cache, metrics, retry …). Each comes
//! with a *layer*: a small value holding its configuration (and shared state, such as a
//! registry) that wraps any `Arc<dyn KeyStore>`, as tower's `Layer` and OpenDAL's layers do.
//! The wrappers themselves are also usable directly, generic over the inner store.
//!
//! # Order
//!
//! [`StoreBuilder::layer`] adds layers **outermost first**: the first layer added sees each
//! call first. The recommended stack, top to bottom:
//!
//! ```text
//! metrics   – measures what the service experiences, cache hits included
//! cache     – answers hot keys without touching anything below
//! breaker   – fails fast while the backend is down (after the cache, so hits still work)
//! retry     – repeats transient failures; each attempt is bounded by …
//! timeout   – … a per-attempt deadline
//! backend
//! ```

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::key_name::{KeyName, KeyPrefix};
use crate::secret::{SecretMeta, SecretValue, StoredSecret};
use crate::store::{Capabilities, KeyStore, check_value_len};

/// Wraps a store in a decorator.
pub trait Layer: Send + Sync {
    /// Returns `inner` wrapped in this layer's decorator.
    fn layer(&self, inner: Arc<dyn KeyStore>) -> Arc<dyn KeyStore>;
}

impl<F> Layer for F
where
    F: Fn(Arc<dyn KeyStore>) -> Arc<dyn KeyStore> + Send + Sync,
{
    fn layer(&self, inner: Arc<dyn KeyStore>) -> Arc<dyn KeyStore> {
        self(inner)
    }
}

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
    /// [`handle`](crate::CircuitBreakerLayer::handle)) to read its state.
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
        breaker: crate::CircuitBreakerLayer,
        retry: crate::RetryLayer,
        timeout: crate::TimeoutLayer,
    ) -> Self {
        self.layer(breaker).layer(retry).layer(timeout)
    }

    /// [`resilience`](Self::resilience) with the reference settings of every layer.
    #[must_use]
    pub fn default_resilience(self) -> Self {
        self.resilience(
            crate::CircuitBreakerLayer::new(),
            crate::RetryLayer::new(),
            crate::TimeoutLayer::new(),
        )
    }

    /// Builds the stack.
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

/// A layer that checks values against a size limit before they go further down the stack.
///
/// Every backend checks its own limit too; this layer lets a service set a tighter one once,
/// at the top, so an oversized value never reaches the cache, the metrics of the backend or
/// the network. Names need no check here: a [`KeyName`] is valid by construction.
#[derive(Clone, Copy, Debug, Default)]
pub struct ValidateLayer {
    max_value_len: Option<usize>,
}

impl ValidateLayer {
    /// Uses the inner store's own [`Capabilities::max_value_len`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a limit (the smaller of this and the inner store's limit applies).
    #[must_use]
    pub fn max_value_len(mut self, bytes: usize) -> Self {
        self.max_value_len = Some(bytes);
        self
    }
}

impl Layer for ValidateLayer {
    fn layer(&self, inner: Arc<dyn KeyStore>) -> Arc<dyn KeyStore> {
        Arc::new(Validate::new(inner, *self))
    }
}

/// The decorator [`ValidateLayer`] makes: rejects oversized values with
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) before calling the inner store.
#[derive(Debug)]
pub struct Validate<S> {
    inner: S,
    max_value_len: usize,
}

impl<S: KeyStore> Validate<S> {
    /// Wraps `inner` with the limits of `config`.
    pub fn new(inner: S, config: ValidateLayer) -> Self {
        let own = inner.capabilities().max_value_len;
        let max_value_len = config.max_value_len.map_or(own, |m| m.min(own));
        Self {
            inner,
            max_value_len,
        }
    }

    /// The store this one wraps.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: KeyStore> fmt::Display for Validate<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Validate({})", self.inner)
    }
}

#[async_trait]
impl<S: KeyStore> KeyStore for Validate<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner
            .capabilities()
            .with_max_value_len(self.max_value_len)
    }
    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        self.inner.get(key).await
    }
    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        self.inner.get_version(key, version).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        check_value_len(&value, self.max_value_len)?;
        self.inner.store(key, value).await
    }
    async fn remove(&self, key: &KeyName) -> Result<()> {
        self.inner.remove(key).await
    }
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        self.inner.list(prefix).await
    }
    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }
}
