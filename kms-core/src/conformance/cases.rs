//! The store conformance cases, one `pub async fn` each; the list that runs them is in the
//! [module docs](super).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::support::{TestStore, cleanup, key, namespace};
use crate::error::ErrorKind;
use crate::key_name::{KeyName, KeyPrefix};
use crate::layers::layer::Layer;
use crate::secret::SecretValue;
use crate::store::{KeyStore, KeyStoreExt};

/// A stored value reads back byte for byte, with consistent metadata.
pub async fn store_then_get_returns_same_bytes(store: &TestStore) {
    let ns = namespace("roundtrip");
    let k = key(&ns, "password");
    let written = store
        .store(&k, SecretValue::from("correct horse battery staple"))
        .await
        .unwrap_or_else(|e| panic!("{store}: store failed: {e}"));
    let read = store
        .get(&k)
        .await
        .unwrap_or_else(|e| panic!("{store}: get failed: {e}"));
    assert_eq!(
        read.value.expose_secret(),
        b"correct horse battery staple",
        "{store}"
    );
    if store.capabilities().versions {
        assert!(
            written.version.is_some(),
            "{store}: a versioned store names the version it wrote"
        );
        assert_eq!(
            read.meta.version, written.version,
            "{store}: get returns the version just written"
        );
    }
    cleanup(store, &[k]).await;
}

/// Every byte value survives a round trip (no text encoding on the way).
pub async fn binary_values_round_trip(store: &TestStore) {
    let ns = namespace("binary");
    let k = key(&ns, "blob");
    let len = store.capabilities().max_value_len.min(512);
    let bytes: Vec<u8> = (0..len).map(|i| (i % 256) as u8).rev().collect();
    store
        .store(&k, SecretValue::from(bytes.clone()))
        .await
        .unwrap_or_else(|e| panic!("{store}: store of binary failed: {e}"));
    let read = store
        .get(&k)
        .await
        .unwrap_or_else(|e| panic!("{store}: get failed: {e}"));
    assert_eq!(
        read.value.expose_secret(),
        &bytes[..],
        "{store}: binary value changed"
    );
    cleanup(store, &[k]).await;
}

/// A second store of the same key replaces the value `get` returns.
pub async fn overwrite_replaces_value(store: &TestStore) {
    let ns = namespace("overwrite");
    let k = key(&ns, "api-key");
    store
        .store(&k, "first".into())
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"));
    store
        .store(&k, "second".into())
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"));
    let read = store
        .get(&k)
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"));
    assert_eq!(
        read.value.expose_secret(),
        b"second",
        "{store}: overwrite not visible"
    );
    cleanup(store, &[k]).await;
}

/// `get` of a key never written is [`ErrorKind::NotFound`].
pub async fn get_missing_is_not_found(store: &TestStore) {
    let ns = namespace("missing");
    let err = store
        .get(&key(&ns, "nope"))
        .await
        .expect_err("missing key must not be found");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{store}: {err}");
}

/// After `remove`, `get` is [`ErrorKind::NotFound`].
pub async fn remove_then_get_is_not_found(store: &TestStore) {
    let ns = namespace("remove");
    let k = key(&ns, "token");
    store
        .store(&k, "value".into())
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"));
    store
        .remove(&k)
        .await
        .unwrap_or_else(|e| panic!("{store}: remove failed: {e}"));
    let err = store
        .get(&k)
        .await
        .expect_err("removed key must not be found");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{store}: {err}");
}

/// `remove` of a key never written is [`ErrorKind::NotFound`].
pub async fn remove_missing_is_not_found(store: &TestStore) {
    let ns = namespace("remove-missing");
    let err = store
        .remove(&key(&ns, "nope"))
        .await
        .expect_err("removing a missing key must fail");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{store}: {err}");
}

/// `list` by prefix returns exactly the matching names; the empty prefix returns all of them.
/// A store that cannot list answers [`ErrorKind::Unsupported`].
pub async fn list_with_and_without_prefix(store: &TestStore) {
    let ns = namespace("list");
    if !store.capabilities().list {
        let err = store
            .list(&KeyPrefix::all())
            .await
            .expect_err("list is not declared");
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{store}: {err}");
        return;
    }
    let keys = [
        key(&ns, "a/one"),
        key(&ns, "a/two"),
        key(&ns, "b/one"),
        key(&ns, "ab"),
    ];
    for k in &keys {
        store
            .store(k, "v".into())
            .await
            .unwrap_or_else(|e| panic!("{store}: {e}"));
    }
    let names = |prefix: &str| {
        let prefix = KeyPrefix::new(prefix).expect("valid prefix");
        async move {
            let listed = store
                .list(&prefix)
                .await
                .unwrap_or_else(|e| panic!("{store}: list failed: {e}"));
            for name in &listed {
                assert!(
                    name.starts_with(&prefix),
                    "{store}: {name} listed under '{prefix}'"
                );
            }
            listed
                .into_iter()
                .map(|n| n.to_string())
                .collect::<BTreeSet<_>>()
        }
    };
    let expect = |rest: &[&str]| {
        rest.iter()
            .map(|r| format!("{ns}/{r}"))
            .collect::<BTreeSet<_>>()
    };

    assert_eq!(
        names(&format!("{ns}/")).await,
        expect(&["a/one", "a/two", "b/one", "ab"]),
        "{store}"
    );
    assert_eq!(
        names(&format!("{ns}/a/")).await,
        expect(&["a/one", "a/two"]),
        "{store}"
    );
    assert_eq!(
        names(&format!("{ns}/a")).await,
        expect(&["a/one", "a/two", "ab"]),
        "{store}: string prefix"
    );
    assert_eq!(
        names(&format!("{ns}/b/o")).await,
        expect(&["b/one"]),
        "{store}"
    );
    assert!(
        names(&format!("{ns}/zzz/")).await.is_empty(),
        "{store}: empty prefix match"
    );
    let all = names("").await;
    for k in &keys {
        assert!(
            all.contains(k.as_str()),
            "{store}: {k} missing from an unfiltered list"
        );
    }
    cleanup(store, &keys).await;
    assert!(
        names(&format!("{ns}/")).await.is_empty(),
        "{store}: removed keys still listed"
    );
}

/// Many concurrent writers and readers: every write lands, no read sees a torn value.
pub async fn concurrent_writers_and_readers_lose_nothing(store: &TestStore) {
    const WRITERS: usize = 8;
    const KEYS_EACH: usize = 5;
    let ns = Arc::new(namespace("concurrent"));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let (writer_store, writer_ns) = (store.clone(), ns.clone());
        tasks.spawn(async move {
            let (store, ns) = (writer_store, writer_ns);
            for i in 0..KEYS_EACH {
                let k = key(&ns, &format!("w{w}/k{i}"));
                let value = format!("writer {w} key {i}");
                store
                    .store(&k, value.clone().into())
                    .await
                    .unwrap_or_else(|e| panic!("{store}: {e}"));
                // A reader racing the other writers must see this writer's value or a later one
                // of its own; nobody else writes this key.
                let read = store
                    .get(&k)
                    .await
                    .unwrap_or_else(|e| panic!("{store}: {e}"));
                assert_eq!(read.value.expose_str().unwrap(), value, "{store}");
            }
        });
        let (reader_store, reader_ns) = (store.clone(), ns.clone());
        tasks.spawn(async move {
            let (store, ns) = (reader_store, reader_ns);
            // Readers of keys that may not exist yet: not-found or the exact value, nothing else.
            for i in 0..KEYS_EACH {
                let k = key(&ns, &format!("w{w}/k{i}"));
                match store.get(&k).await {
                    Ok(read) => assert_eq!(
                        read.value.expose_str().unwrap(),
                        format!("writer {w} key {i}")
                    ),
                    Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound, "{store}: {e}"),
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a conformance task panicked");
    }
    let mut keys = Vec::new();
    for w in 0..WRITERS {
        for i in 0..KEYS_EACH {
            let k = key(&ns, &format!("w{w}/k{i}"));
            let read = store
                .get(&k)
                .await
                .unwrap_or_else(|e| panic!("{store}: {k} lost: {e}"));
            assert_eq!(
                read.value.expose_str().unwrap(),
                format!("writer {w} key {i}")
            );
            keys.push(k);
        }
    }
    if store.capabilities().list {
        let listed = store
            .list(&KeyPrefix::new(format!("{ns}/")).unwrap())
            .await
            .unwrap();
        assert_eq!(
            listed.len(),
            WRITERS * KEYS_EACH,
            "{store}: list after concurrent writes"
        );
    }
    cleanup(store, &keys).await;
}

/// Names that break the rules fail with [`ErrorKind::InvalidInput`] from the name validator,
/// through the string conveniences of [`KeyStoreExt`], before the store is called.
pub async fn invalid_names_are_rejected_before_the_store(store: &TestStore) {
    let bad = [
        "",
        "../../sys/policy/root",
        "a/../b",
        "/absolute",
        "trailing/",
        "double//slash",
        "control\u{7}char",
        "new\nline",
        "space here",
        "percent%2e%2e",
    ];
    for name in bad {
        for err in [
            store
                .put(name, "x")
                .await
                .expect_err("invalid name accepted by put"),
            store
                .get_value(name)
                .await
                .expect_err("invalid name accepted by get"),
            store
                .delete(name)
                .await
                .expect_err("invalid name accepted by delete"),
        ] {
            assert_eq!(
                err.kind(),
                ErrorKind::InvalidInput,
                "{store}: {name:?}: {err}"
            );
            assert!(
                err.message().starts_with("invalid key name"),
                "{store}: {name:?}: {err}"
            );
            assert_eq!(
                err.backend(),
                None,
                "{store}: {name:?} reached a backend: {err}"
            );
        }
    }
    let long = "k".repeat(crate::MAX_KEY_NAME_LEN + 1);
    let err = store
        .put(&long, "x")
        .await
        .expect_err("overlong name accepted");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{store}: {err}");
}

/// A value over the declared maximum is [`ErrorKind::InvalidInput`] and writes nothing; a value
/// of exactly the maximum is accepted.
pub async fn oversized_values_are_rejected(store: &TestStore) {
    let ns = namespace("oversized");
    let k = key(&ns, "huge");
    let max = store.capabilities().max_value_len;
    let err = store
        .store(&k, SecretValue::from(vec![b'x'; max + 1]))
        .await
        .expect_err("oversized value accepted");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{store}: {err}");
    assert!(
        !err.to_string().contains("xxxx"),
        "{store}: error shows the value: {err}"
    );
    let err = store.get(&k).await.expect_err("rejected value was written");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{store}: {err}");

    store
        .store(&k, SecretValue::from(vec![b'y'; max]))
        .await
        .unwrap_or_else(|e| {
            panic!("{store}: a value of exactly max_value_len ({max}) failed: {e}")
        });
    assert_eq!(store.get(&k).await.unwrap().value.len(), max, "{store}");
    cleanup(store, &[k]).await;
}

/// A store that declares versions returns distinct version ids and reads old versions back.
pub async fn versions_are_kept_when_declared(store: &TestStore) {
    if !store.capabilities().versions {
        return;
    }
    let ns = namespace("versions");
    let k = key(&ns, "rotating");
    let v1 = store
        .store(&k, "one".into())
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"));
    let v2 = store
        .store(&k, "two".into())
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"));
    let (v1, v2) = (
        v1.version.expect("version id"),
        v2.version.expect("version id"),
    );
    assert_ne!(v1, v2, "{store}: two writes, one version id");
    let old = store
        .get_version(&k, &v1)
        .await
        .unwrap_or_else(|e| panic!("{store}: get_version: {e}"));
    assert_eq!(old.value.expose_secret(), b"one", "{store}");
    assert_eq!(old.meta.version.as_deref(), Some(&*v1), "{store}");
    let current = store.get(&k).await.unwrap();
    assert_eq!(current.value.expose_secret(), b"two", "{store}");
    assert_eq!(current.meta.version.as_deref(), Some(&*v2), "{store}");
    cleanup(store, &[k]).await;
}

/// The empty value is [`ErrorKind::InvalidInput`] on every store (one rule for all backends,
/// see [`check_value_len`](crate::check_value_len)) and writes nothing.
pub async fn empty_value_is_rejected(store: &TestStore) {
    let ns = namespace("empty");
    let k = key(&ns, "nothing");
    let err = store
        .store(&k, SecretValue::from(""))
        .await
        .expect_err("empty value accepted");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{store}: {err}");
    assert!(err.message().contains("empty"), "{store}: {err}");
    let err = store
        .get(&k)
        .await
        .expect_err("rejected empty value was written");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{store}: {err}");
    // An existing key keeps its value when an empty write is refused.
    store
        .store(&k, "kept".into())
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"));
    store
        .store(&k, SecretValue::from(""))
        .await
        .expect_err("empty value accepted");
    assert_eq!(
        store.get(&k).await.unwrap().value.expose_secret(),
        b"kept",
        "{store}"
    );
    cleanup(store, &[k]).await;
}

/// Names using every character outside `[A-Za-z0-9]` that [`KeyName`] allows (AWS's secret-name
/// set: `_+=.@-/`) are stored, read, listed and removed as themselves.
pub async fn names_with_every_allowed_character_round_trip(store: &TestStore) {
    let ns = namespace("charset");
    let keys: Vec<KeyName> = [
        "db@prod",
        "api+key",
        "team=payments/token",
        "a.b-c_d",
        "user@example.com",
    ]
    .iter()
    .map(|rest| key(&ns, rest))
    .collect();
    for (i, k) in keys.iter().enumerate() {
        store
            .store(k, SecretValue::from(format!("value-{i}")))
            .await
            .unwrap_or_else(|e| panic!("{store}: store {k}: {e}"));
    }
    for (i, k) in keys.iter().enumerate() {
        let read = store
            .get(k)
            .await
            .unwrap_or_else(|e| panic!("{store}: get {k}: {e}"));
        assert_eq!(
            read.value.expose_secret(),
            format!("value-{i}").as_bytes(),
            "{store}: {k}"
        );
    }
    if store.capabilities().list {
        let prefix = KeyPrefix::new(format!("{ns}/")).unwrap();
        let listed: BTreeSet<KeyName> = store
            .list(&prefix)
            .await
            .unwrap_or_else(|e| panic!("{store}: list: {e}"))
            .into_iter()
            .collect();
        let expected: BTreeSet<KeyName> = keys.iter().cloned().collect();
        assert_eq!(listed, expected, "{store}");
    }
    for k in &keys {
        store
            .remove(k)
            .await
            .unwrap_or_else(|e| panic!("{store}: remove {k}: {e}"));
        let err = store.get(k).await.expect_err("removed key still readable");
        assert_eq!(err.kind(), ErrorKind::NotFound, "{store}: {k}: {err}");
    }
}

/// One logical write is one version: a `store` whose first attempt lands on the backend but
/// reports a timeout, retried by [`RetryLayer`](crate::RetryLayer), leaves exactly the version
/// the first attempt made (its id is what the call returns and what `get` reads), and the
/// version before it is still readable. Likewise a `remove` that landed, then timed out, then
/// was retried, succeeds.
pub async fn retried_write_is_one_version(store: &TestStore) {
    let ns = namespace("idempotent");
    let k = key(&ns, "rotated");
    let v1 = store
        .store(&k, "one".into())
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"));
    let flaky = Arc::new(LandThenTimeout::new(store.clone()));
    let retry = crate::RetryLayer::new()
        .base_delay(std::time::Duration::from_millis(1))
        .jitter(std::time::Duration::ZERO)
        .layer(flaky.clone() as TestStore);
    let written = retry
        .store(&k, "two".into())
        .await
        .unwrap_or_else(|e| panic!("{store}: retried store failed: {e}"));
    let landed = flaky
        .landed()
        .expect("the first attempt reached the store")
        .unwrap_or_else(|e| panic!("{store}: the first attempt failed: {e}"));
    assert_eq!(
        flaky.attempts(),
        2,
        "{store}: one failed attempt, one retry"
    );
    let current = store
        .get(&k)
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"));
    assert_eq!(current.value.expose_secret(), b"two", "{store}");
    if store.capabilities().versions {
        assert_eq!(
            written.version, landed.version,
            "{store}: the retry made a second version instead of returning the first"
        );
        assert_eq!(current.meta.version, landed.version, "{store}");
        let old = v1.version.expect("a versioned store returns version ids");
        let previous = store
            .get_version(&k, &old)
            .await
            .unwrap_or_else(|e| panic!("{store}: get_version of the first version: {e}"));
        assert_eq!(previous.value.expose_secret(), b"one", "{store}");
    }
    retry
        .remove(&k)
        .await
        .unwrap_or_else(|e| panic!("{store}: retried remove that had landed: {e}"));
    let err = store.get(&k).await.expect_err("removed key still readable");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{store}: {err}");
}

/// `store_if_version` writes only on the expected version (`None`: only if absent), and a
/// mismatch is [`ErrorKind::Conflict`] that writes nothing; a store without check-and-set
/// answers [`ErrorKind::Unsupported`] and writes nothing either.
pub async fn check_and_set_writes_only_on_the_expected_version(store: &TestStore) {
    let ns = namespace("cas");
    let k = key(&ns, "guarded");
    let first = match store.store_if_version(&k, "one".into(), None).await {
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            let err = store.get(&k).await.expect_err("an unsupported write wrote");
            assert_eq!(err.kind(), ErrorKind::NotFound, "{store}: {err}");
            return;
        }
        other => other.unwrap_or_else(|e| panic!("{store}: check-and-set on a new key: {e}")),
    };
    let v1 = first
        .version
        .expect("a check-and-set store returns version ids");
    let err = store
        .store_if_version(&k, "lost".into(), None)
        .await
        .expect_err("'only if absent' wrote over an existing key");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{store}: {err}");
    let second = store
        .store_if_version(&k, "two".into(), Some(&v1))
        .await
        .unwrap_or_else(|e| panic!("{store}: check-and-set on the current version: {e}"));
    let err = store
        .store_if_version(&k, "stale".into(), Some(&v1))
        .await
        .expect_err("a stale version wrote");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{store}: {err}");
    let current = store
        .get(&k)
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"));
    assert_eq!(current.value.expose_secret(), b"two", "{store}");
    assert_eq!(current.meta.version, second.version, "{store}");
    cleanup(store, &[k]).await;
}

/// A decorator whose first `store` and first `remove` reach the store, then report a
/// [`ErrorKind::Timeout`] as if the answer had been lost: what a timeout layer does when the
/// backend applies a write but answers late.
#[derive(Debug)]
struct LandThenTimeout {
    inner: TestStore,
    landed: std::sync::Mutex<Option<crate::Result<crate::SecretMeta>>>,
    attempts: AtomicU64,
    removed: std::sync::atomic::AtomicBool,
}

impl LandThenTimeout {
    fn new(inner: TestStore) -> Self {
        Self {
            inner,
            landed: std::sync::Mutex::new(None),
            attempts: AtomicU64::new(0),
            removed: std::sync::atomic::AtomicBool::new(false),
        }
    }
    fn landed(&self) -> Option<crate::Result<crate::SecretMeta>> {
        self.landed.lock().unwrap().clone()
    }
    fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::SeqCst)
    }
    fn lost_answer() -> crate::Error {
        crate::Error::new(
            ErrorKind::Timeout,
            "conformance: the answer was lost after the write landed",
        )
    }
}

impl std::fmt::Display for LandThenTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LandThenTimeout({})", self.inner)
    }
}

#[async_trait::async_trait]
impl KeyStore for LandThenTimeout {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn capabilities(&self) -> crate::Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &KeyName) -> crate::Result<crate::StoredSecret> {
        self.inner.get(key).await
    }
    async fn get_version(
        &self,
        key: &KeyName,
        version: &str,
    ) -> crate::Result<crate::StoredSecret> {
        self.inner.get_version(key, version).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> crate::Result<crate::SecretMeta> {
        let n = self.attempts.fetch_add(1, Ordering::SeqCst);
        let result = self.inner.store(key, value).await;
        if n == 0 {
            *self.landed.lock().unwrap() = Some(result);
            return Err(Self::lost_answer());
        }
        result
    }
    async fn remove(&self, key: &KeyName) -> crate::Result<()> {
        let result = self.inner.remove(key).await;
        if !self.removed.swap(true, Ordering::SeqCst) {
            result?;
            return Err(Self::lost_answer());
        }
        result
    }
    async fn list(&self, prefix: &KeyPrefix) -> crate::Result<Vec<KeyName>> {
        self.inner.list(prefix).await
    }
    async fn health(&self) -> crate::Result<()> {
        self.inner.health().await
    }
}

/// `health` succeeds on a working store; the backend label is short, static and lowercase; the
/// store names itself (or its stack) in `Display`.
pub async fn health_and_labels(store: &TestStore) {
    store
        .health()
        .await
        .unwrap_or_else(|e| panic!("{store}: health failed: {e}"));
    let label = store.backend();
    assert!(
        !label.is_empty()
            && label.len() <= 32
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'),
        "backend label {label:?} is not a short lowercase metric label"
    );
    assert!(
        !store.to_string().is_empty(),
        "a store names itself in Display"
    );
}
