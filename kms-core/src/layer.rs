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

use crate::error::{Error, Result};
use crate::key_name::{KeyName, KeyPrefix};
use crate::secret::{SecretMeta, SecretValue, StoredSecret};
use crate::store::{Capabilities, KeyStore, check_value_len};

/// Wraps a store in a decorator.
///
/// # Configuration
///
/// A layer checks its settings in [`validate`](Layer::validate), which
/// [`StoreBuilder::try_build`] calls for every layer before building anything: a bad setting
/// is an [`ErrorKind::Configuration`](crate::ErrorKind::Configuration) error naming it, at
/// build time. [`layer`](Layer::layer) itself cannot fail; a layer built with a bad setting
/// anyway (through [`StoreBuilder::build`] or directly) makes a decorator that answers every
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

    /// Sets a limit in bytes, at least 1 (the smaller of this and the inner store's limit
    /// applies).
    #[must_use]
    pub fn max_value_len(mut self, bytes: usize) -> Self {
        self.max_value_len = Some(bytes);
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`](crate::ErrorKind::Configuration) for `max_value_len(0)`.
    pub fn validate(&self) -> Result<()> {
        if self.max_value_len == Some(0) {
            return Err(Error::configuration(
                "max_value_len",
                "must be at least 1 byte",
            ));
        }
        Ok(())
    }
}

impl Layer for ValidateLayer {
    fn layer(&self, inner: Arc<dyn KeyStore>) -> Arc<dyn KeyStore> {
        Arc::new(Validate::new(inner, *self))
    }

    fn validate(&self) -> Result<()> {
        ValidateLayer::validate(self)
    }
}

/// The decorator [`ValidateLayer`] makes: rejects oversized values with
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) before calling the inner store.
#[derive(Debug)]
pub struct Validate<S> {
    inner: S,
    max_value_len: usize,
    /// The configuration error every call answers with, if `config` was invalid.
    refused: Option<Error>,
}

impl<S: KeyStore> Validate<S> {
    /// Wraps `inner` with the limits of `config` (with an invalid `config`, every call answers
    /// its configuration error; see [`Layer`]).
    pub fn new(inner: S, config: ValidateLayer) -> Self {
        let own = inner.capabilities().max_value_len;
        let max_value_len = config.max_value_len.map_or(own, |m| m.min(own));
        Self {
            inner,
            max_value_len,
            refused: config.validate().err(),
        }
    }

    fn check(&self) -> Result<()> {
        match &self.refused {
            Some(err) => Err(err.clone()),
            None => Ok(()),
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
        self.check()?;
        self.inner.get(key).await
    }
    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        self.check()?;
        self.inner.get_version(key, version).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        self.check()?;
        check_value_len(&value, self.max_value_len)?;
        self.inner.store(key, value).await
    }
    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> Result<SecretMeta> {
        self.check()?;
        check_value_len(&value, self.max_value_len)?;
        self.inner.store_if_version(key, value, expected).await
    }
    async fn remove(&self, key: &KeyName) -> Result<()> {
        self.check()?;
        self.inner.remove(key).await
    }
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        self.check()?;
        self.inner.list(prefix).await
    }
    async fn health(&self) -> Result<()> {
        self.check()?;
        self.inner.health().await
    }
}
