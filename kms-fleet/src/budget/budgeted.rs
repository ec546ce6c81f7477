//! [`Budgeted`]: the decorator that makes every backend call draw from a [`RequestBudget`].

use std::fmt;

use kms_core::{
    Capabilities, KeyName, KeyPrefix, KeyStore, Result, SecretMeta, SecretValue, StoredSecret,
    async_trait,
};

use crate::budget::bucket::RequestBudget;

/// A [`KeyStore`] whose calls each take a token from a [`RequestBudget`] before reaching the
/// store it wraps; see [`BudgetLayer`](crate::BudgetLayer) for where it goes.
#[derive(Debug)]
pub struct Budgeted<S> {
    inner: S,
    budget: RequestBudget,
}

impl<S: KeyStore> Budgeted<S> {
    /// Wraps `inner`, drawing from `budget`.
    pub fn new(inner: S, budget: RequestBudget) -> Self {
        Self { inner, budget }
    }

    /// The budget.
    pub fn budget(&self) -> &RequestBudget {
        &self.budget
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: KeyStore> fmt::Display for Budgeted<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Budgeted({}, {})", self.budget.rate(), self.inner)
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: KeyStore> KeyStore for Budgeted<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        self.budget.acquire().await?;
        self.inner.get(key).await
    }
    fn get_now(&self, key: &KeyName) -> Option<Result<StoredSecret>> {
        // An instant answer reaches no backend (a store below that answers at once is a
        // cache or memory): it costs no token.
        self.inner.get_now(key)
    }
    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        self.budget.acquire().await?;
        self.inner.get_version(key, version).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        self.budget.acquire().await?;
        self.inner.store(key, value).await
    }
    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> Result<SecretMeta> {
        self.budget.acquire().await?;
        self.inner.store_if_version(key, value, expected).await
    }
    async fn remove(&self, key: &KeyName) -> Result<()> {
        self.budget.acquire().await?;
        self.inner.remove(key).await
    }
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        self.budget.acquire().await?;
        self.inner.list(prefix).await
    }
    async fn health(&self) -> Result<()> {
        // Declined on purpose: a liveness probe is rare and an empty budget must not read as
        // a backend that is down (the breaker and health gauges would open on it).
        self.inner.health().await
    }
}
