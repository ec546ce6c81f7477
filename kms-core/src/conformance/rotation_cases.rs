//! The rotation conformance cases: [`Rotation`] and [`Overlap`] over every store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::support::{TestStore, cleanup, key, namespace};
use crate::error::ErrorKind;
use crate::key_name::{KeyName, KeyPrefix};
use crate::rotation::{Overlap, Rotation};
use crate::secret::SecretValue;
use crate::store::{KeyStore, KeyStoreExt};

/// A rotation writes a new version with check-and-set against the version it read: when
/// another write lands between its read and its write, it fails with
/// [`ErrorKind::Conflict`] and changes nothing. It never creates a missing key, rotates one
/// field of a JSON-object secret keeping the others, and refuses to replace such a document
/// whole. On a store without check-and-set it writes unchecked and says so.
pub async fn rotation_with_a_stale_version_is_a_conflict_and_changes_nothing(store: &TestStore) {
    let ns = namespace("rotate");
    let k = key(&ns, "secret");
    let missing = key(&ns, "missing");
    let doc = key(&ns, "doc");

    let err = Rotation::new()
        .run(store.as_ref(), &missing)
        .await
        .expect_err("rotated a missing key");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{store}: {err}");
    let err = store
        .get(&missing)
        .await
        .expect_err("rotation created a key");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{store}: {err}");

    store
        .store(&k, "one".into())
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"));
    let done = Rotation::new()
        .run(store.as_ref(), &k)
        .await
        .unwrap_or_else(|e| panic!("{store}: rotate: {e}"));
    let now = store
        .get(&k)
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"));
    assert_eq!(now.value.len(), 43, "{store}: 32 random bytes as base64url");
    assert!(
        now.value.expose_str().is_ok(),
        "{store}: the new value is text"
    );
    if store.capabilities().versions {
        assert_ne!(done.previous.version, done.current.version, "{store}");
        assert_eq!(now.meta.version, done.current.version, "{store}");
    }

    let racing = WriteAfterRead::new(store.clone());
    match Rotation::new().run(&racing, &k).await {
        Err(err) => {
            assert_eq!(err.kind(), ErrorKind::Conflict, "{store}: {err}");
            assert!(done.checked, "{store}: a conflict from an unchecked store");
            let now = store
                .get(&k)
                .await
                .unwrap_or_else(|e| panic!("{store}: {e}"));
            assert_eq!(
                now.value.expose_secret(),
                b"interloper",
                "{store}: the losing rotation changed the key"
            );
        }
        Ok(unchecked) => assert!(
            !unchecked.checked && !done.checked,
            "{store}: a checked rotation overwrote a write made after its read"
        ),
    }

    store
        .store(&doc, r#"{"username":"app","password":"old"}"#.into())
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"));
    let err = Rotation::new()
        .run(store.as_ref(), &doc)
        .await
        .expect_err("replaced a JSON document whole without being asked");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{store}: {err}");
    Rotation::new()
        .field("password")
        .run(store.as_ref(), &doc)
        .await
        .unwrap_or_else(|e| panic!("{store}: rotate a field: {e}"));
    let username = store
        .get_field(doc.as_str(), "username")
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"));
    assert_eq!(username.expose_secret(), b"app", "{store}");
    let password = store
        .get_field(doc.as_str(), "password")
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"));
    assert_eq!(password.len(), 43, "{store}");
    cleanup(store, &[k, doc]).await;
}

/// Two rotations of one key that both read the same version before either writes: on a
/// store with check-and-set, exactly one writes a new version and the other fails with
/// [`ErrorKind::Conflict`], so no update is lost; on a store without it, both write and both
/// say they were unchecked.
pub async fn concurrent_rotations_give_one_new_version_and_one_conflict(store: &TestStore) {
    let ns = namespace("rotate-race");
    let k = key(&ns, "secret");
    let first = store
        .store(&k, "one".into())
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"));
    let together = Arc::new(ReadTogether {
        inner: store.clone(),
        barrier: tokio::sync::Barrier::new(2),
    });
    let rotate = |store: Arc<ReadTogether>, k: KeyName| async move {
        Rotation::new().run(store.as_ref(), &k).await
    };
    let (a, b) = tokio::join!(
        rotate(together.clone(), k.clone()),
        rotate(together.clone(), k.clone())
    );
    let now = store
        .get(&k)
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"));
    match (a, b) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => {
            assert_eq!(lost.kind(), ErrorKind::Conflict, "{store}: {lost}");
            assert!(won.checked, "{store}");
            assert_eq!(won.previous.version, first.version, "{store}");
            assert_eq!(
                now.meta.version, won.current.version,
                "{store}: the winner is current"
            );
            if let (Some(v1), Some(v2)) = (
                first.version.as_deref().and_then(|v| v.parse::<u64>().ok()),
                won.current
                    .version
                    .as_deref()
                    .and_then(|v| v.parse::<u64>().ok()),
            ) {
                assert_eq!(v2, v1 + 1, "{store}: exactly one new version");
            }
        }
        (Ok(a), Ok(b)) => assert!(
            !a.checked && !b.checked,
            "{store}: two checked rotations from one version both wrote"
        ),
        (Err(a), Err(b)) => panic!("{store}: both rotations failed: {a}; {b}"),
    }
    assert_eq!(now.value.len(), 43, "{store}");
    cleanup(store, &[k]).await;
}

/// A store whose `get`s wait until two of them have read.
#[derive(Debug)]
struct ReadTogether {
    inner: TestStore,
    barrier: tokio::sync::Barrier,
}

impl std::fmt::Display for ReadTogether {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReadTogether({})", self.inner)
    }
}

#[async_trait::async_trait]
impl KeyStore for ReadTogether {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn capabilities(&self) -> crate::Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &KeyName) -> crate::Result<crate::StoredSecret> {
        let read = self.inner.get(key).await;
        self.barrier.wait().await;
        read
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> crate::Result<crate::SecretMeta> {
        self.inner.store(key, value).await
    }
    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> crate::Result<crate::SecretMeta> {
        self.inner.store_if_version(key, value, expected).await
    }
    async fn remove(&self, key: &KeyName) -> crate::Result<()> {
        self.inner.remove(key).await
    }
    async fn list(&self, prefix: &KeyPrefix) -> crate::Result<Vec<KeyName>> {
        self.inner.list(prefix).await
    }
    async fn health(&self) -> crate::Result<()> {
        self.inner.health().await
    }
}

/// [`Overlap::read`] returns the current and the previous value on a store with versions,
/// `None` as previous for a key with one version, and [`ErrorKind::Unsupported`] on a store
/// without versions.
pub async fn overlap_reads_the_current_and_the_previous_value(store: &TestStore) {
    let ns = namespace("overlap");
    let k = key(&ns, "signing");
    store
        .store(&k, "one".into())
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"));
    let first = match Overlap::read(store.as_ref(), &k).await {
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            assert!(
                !store.capabilities().versions,
                "{store}: versions declared: {e}"
            );
            cleanup(store, &[k]).await;
            return;
        }
        other => other.unwrap_or_else(|e| panic!("{store}: overlap: {e}")),
    };
    assert_eq!(first.current.value.expose_secret(), b"one", "{store}");
    assert!(
        first.previous.is_none(),
        "{store}: a previous version of a new key"
    );
    store
        .store(&k, "two".into())
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"));
    let both = Overlap::read(store.as_ref(), &k)
        .await
        .unwrap_or_else(|e| panic!("{store}: overlap: {e}"));
    assert_eq!(both.current.value.expose_secret(), b"two", "{store}");
    let previous = both.previous.expect("the previous version");
    assert_eq!(previous.value.expose_secret(), b"one", "{store}");
    assert_eq!(previous.meta.version, first.current.meta.version, "{store}");
    cleanup(store, &[k]).await;
}

/// A store whose first `get` writes `"interloper"` to the key after reading it: another
/// writer landing between a rotation's read and its write.
#[derive(Debug)]
struct WriteAfterRead {
    inner: TestStore,
    wrote: AtomicBool,
}

impl WriteAfterRead {
    fn new(inner: TestStore) -> Self {
        Self {
            inner,
            wrote: AtomicBool::new(false),
        }
    }
}

impl std::fmt::Display for WriteAfterRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WriteAfterRead({})", self.inner)
    }
}

#[async_trait::async_trait]
impl KeyStore for WriteAfterRead {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn capabilities(&self) -> crate::Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &KeyName) -> crate::Result<crate::StoredSecret> {
        let read = self.inner.get(key).await?;
        if !self.wrote.swap(true, Ordering::SeqCst) {
            self.inner.store(key, "interloper".into()).await?;
        }
        Ok(read)
    }
    async fn get_version(
        &self,
        key: &KeyName,
        version: &str,
    ) -> crate::Result<crate::StoredSecret> {
        self.inner.get_version(key, version).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> crate::Result<crate::SecretMeta> {
        self.inner.store(key, value).await
    }
    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> crate::Result<crate::SecretMeta> {
        self.inner.store_if_version(key, value, expected).await
    }
    async fn remove(&self, key: &KeyName) -> crate::Result<()> {
        self.inner.remove(key).await
    }
    async fn list(&self, prefix: &KeyPrefix) -> crate::Result<Vec<KeyName>> {
        self.inner.list(prefix).await
    }
    async fn health(&self) -> crate::Result<()> {
        self.inner.health().await
    }
}
