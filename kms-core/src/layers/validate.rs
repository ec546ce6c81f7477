//! [`ValidateLayer`] and [`Validate`]: reject oversized values before they go further down.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::layer::Layer;
use crate::error::{Error, Result};
use crate::key_name::{KeyName, KeyPrefix};
use crate::secret::{SecretMeta, SecretValue, StoredSecret};
use crate::store::{Capabilities, KeyStore, check_value_len};

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
#[deny(clippy::missing_trait_methods)]
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
        // A cache directly below answers a hit at once: one boxed future for the pair, not two.
        if let Some(answer) = self.inner.get_now(key) {
            return answer;
        }
        self.inner.get(key).await
    }
    fn get_now(&self, key: &KeyName) -> Option<Result<StoredSecret>> {
        // Reads carry no value to check: a synchronous answer below (a cache hit) is passed up.
        if let Some(refused) = &self.refused {
            return Some(Err(refused.clone()));
        }
        self.inner.get_now(key)
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::memory::MemoryStore;

    /// A store that answers every read at once with `answer` (as a cache hit does) and counts
    /// the `get`s that reach it.
    #[derive(Debug)]
    struct Ready {
        answer: StoredSecret,
        gets: AtomicUsize,
    }

    impl fmt::Display for Ready {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Ready")
        }
    }

    #[async_trait]
    impl KeyStore for Ready {
        fn backend(&self) -> &'static str {
            "ready"
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities::new()
        }
        async fn get(&self, _key: &KeyName) -> Result<StoredSecret> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            Ok(self.answer.clone())
        }
        fn get_now(&self, _key: &KeyName) -> Option<Result<StoredSecret>> {
            Some(Ok(self.answer.clone()))
        }
        async fn store(&self, _key: &KeyName, _value: SecretValue) -> Result<SecretMeta> {
            Err(Error::unsupported("writes"))
        }
        async fn remove(&self, _key: &KeyName) -> Result<()> {
            Err(Error::unsupported("writes"))
        }
        async fn list(&self, _prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
            Ok(Vec::new())
        }
        async fn health(&self) -> Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn get_and_get_now_take_the_synchronous_answer_below() {
        let key = KeyName::new("app/k").unwrap();
        let memory = MemoryStore::new();
        memory.store(&key, SecretValue::from("v")).await.unwrap();
        let ready = Ready {
            answer: memory.get(&key).await.unwrap(),
            gets: AtomicUsize::new(0),
        };
        let store = Validate::new(ready, ValidateLayer::new());
        let got = store.get(&key).await.unwrap();
        assert_eq!(got.value.expose_secret(), b"v");
        let now = store.get_now(&key).expect("forwarded").unwrap();
        assert_eq!(now.value.expose_secret(), b"v");
        assert_eq!(store.inner().gets.load(Ordering::SeqCst), 0);
    }
}
