//! [`Published`]: the decorator that publishes every change that lands through it.

use std::fmt;
use std::sync::Arc;

use kms_core::{
    Capabilities, KeyName, KeyPrefix, KeyStore, Result, SecretMeta, SecretValue, StoredSecret,
    async_trait,
};

use crate::message::ChangeKind;
use crate::publish::publisher::Publisher;

/// A [`KeyStore`] that, after each successful `store`, `store_if_version` or `remove`,
/// publishes the change to the store's stream. The write's answer is returned only after the
/// publish was acknowledged or timed out (bounded by the publisher's timeout), and a publish
/// failure never fails the write: it is counted, logged and kept in the outbox.
#[derive(Debug)]
pub struct Published<S> {
    inner: S,
    publisher: Arc<Publisher>,
}

impl<S: KeyStore> Published<S> {
    /// Wraps `inner`, publishing through `publisher`.
    pub fn new(inner: S, publisher: Arc<Publisher>) -> Self {
        Self { inner, publisher }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: KeyStore> fmt::Display for Published<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Published({})", self.inner)
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: KeyStore> KeyStore for Published<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        self.inner.get(key).await
    }
    fn get_now(&self, key: &KeyName) -> Option<Result<StoredSecret>> {
        // A read changes nothing: forwarded as it is.
        self.inner.get_now(key)
    }
    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        self.inner.get_version(key, version).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        let meta = self.inner.store(key, value).await?;
        self.publisher
            .publish(key, meta.version.as_deref(), ChangeKind::Write)
            .await;
        Ok(meta)
    }
    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> Result<SecretMeta> {
        let meta = self.inner.store_if_version(key, value, expected).await?;
        self.publisher
            .publish(key, meta.version.as_deref(), ChangeKind::Write)
            .await;
        Ok(meta)
    }
    async fn remove(&self, key: &KeyName) -> Result<()> {
        self.inner.remove(key).await?;
        self.publisher.publish(key, None, ChangeKind::Remove).await;
        Ok(())
    }
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        self.inner.list(prefix).await
    }
    async fn health(&self) -> Result<()> {
        // The backend's health; the fleet link's own health is `FleetLink::is_up`, so a NATS
        // outage never makes the store look down (the store still serves).
        self.inner.health().await
    }
}
