//! Rotation over the memory store: concurrent rotations, overlap reads, watch through an
//! outage, and the scheduled rotator with paused time.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use kms_core::fault::FaultStore;
use kms_core::rotation::{
    Encoding, Generator, Overlap, Rotation, RotationEvent, RotationObserver, Rotator, Watch,
    WatchEvent,
};
use kms_core::{
    Capabilities, ErrorKind, KeyName, KeyPrefix, KeyStore, KeyStoreExt, MemoryStore, Operation,
    Result, SecretMeta, SecretValue, StoredSecret, async_trait,
};
use tokio::sync::Barrier;

fn key(name: &str) -> KeyName {
    KeyName::new(name).unwrap()
}

/// A store whose `get`s wait until `n` of them have read: rotations that all read the same
/// version before any of them writes.
#[derive(Debug)]
struct ReadTogether {
    inner: MemoryStore,
    barrier: Barrier,
}

impl fmt::Display for ReadTogether {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReadTogether({})", self.inner)
    }
}

#[async_trait]
impl KeyStore for ReadTogether {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        let read = self.inner.get(key).await;
        self.barrier.wait().await;
        read
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        self.inner.store(key, value).await
    }
    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> Result<SecretMeta> {
        self.inner.store_if_version(key, value, expected).await
    }
    async fn remove(&self, key: &KeyName) -> Result<()> {
        self.inner.remove(key).await
    }
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        self.inner.list(prefix).await
    }
    async fn health(&self) -> Result<()> {
        Ok(())
    }
}

#[derive(Default)]
struct Recorder(Mutex<Vec<(String, &'static str, Option<ErrorKind>)>>);

impl RotationObserver for Recorder {
    fn on_rotation(&self, event: &RotationEvent<'_>) {
        self.0.lock().unwrap().push((
            event.key.to_string(),
            event.outcome.status(),
            event.outcome.error_kind(),
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_rotations_give_one_version_and_one_conflict() {
    let store = Arc::new(ReadTogether {
        inner: MemoryStore::new(),
        barrier: Barrier::new(2),
    });
    store.inner.put("db/password", "v1").await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let rotation = Rotation::new().observer(recorder.clone());
    let k = key("db/password");
    let (a, b) = tokio::join!(
        tokio::spawn({
            let (store, rotation, k) = (store.clone(), rotation.clone(), k.clone());
            async move { rotation.run(store.as_ref(), &k).await }
        }),
        tokio::spawn({
            let (store, rotation, k) = (store.clone(), rotation.clone(), k.clone());
            async move { rotation.run(store.as_ref(), &k).await }
        }),
    );
    let results = [a.unwrap(), b.unwrap()];
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let losers: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!((winners.len(), losers.len()), (1, 1), "{results:?}");
    assert_eq!(losers[0].kind(), ErrorKind::Conflict);
    assert!(losers[0].message().contains("lost a race"), "{}", losers[0]);
    let won = winners[0];
    assert!(won.checked);
    assert_eq!(won.previous.version.as_deref(), Some("1"));
    assert_eq!(won.current.version.as_deref(), Some("2"));
    // Exactly one new version, and it is the winner's.
    let now = store.inner.get(&k).await.unwrap();
    assert_eq!(now.meta.version.as_deref(), Some("2"));
    assert_eq!(now.value.len(), 43);
    let mut seen: Vec<_> = recorder.0.lock().unwrap().iter().map(|e| e.1).collect();
    seen.sort();
    assert_eq!(seen, ["conflict", "success"]);
}

#[tokio::test]
async fn generators_and_whole_documents() {
    let store = MemoryStore::new();
    store.put("k", "v").await.unwrap();
    let k = key("k");
    let done = Rotation::new()
        .generator(Generator::random(16, Encoding::Hex))
        .run(&store, &k)
        .await
        .unwrap();
    assert_eq!(done.current.version.as_deref(), Some("2"));
    assert_eq!(store.get_value("k").await.unwrap().len(), 32);
    Rotation::new()
        .generator(Generator::from_fn(|| Ok(r#"{"a":"b"}"#.into())))
        .run(&store, &k)
        .await
        .unwrap();
    // Now a JSON document: whole replacement only when asked.
    let err = Rotation::new().run(&store, &k).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("fields a"), "{err}");
    Rotation::new()
        .replace_document(true)
        .run(&store, &k)
        .await
        .unwrap();
    assert_eq!(
        store.get(&k).await.unwrap().meta.version.as_deref(),
        Some("4")
    );
    // A failing generator writes nothing.
    let err = Rotation::new()
        .generator(Generator::from_fn(|| {
            Err(kms_core::Error::new(ErrorKind::Unavailable, "issuer down"))
        }))
        .run(&store, &k)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(
        store.get(&k).await.unwrap().meta.version.as_deref(),
        Some("4")
    );
    // A field that is missing, or a non-document, is refused before writing.
    let err = Rotation::new()
        .field("password")
        .run(&store, &k)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert_eq!(
        store.get(&k).await.unwrap().meta.version.as_deref(),
        Some("4")
    );
}

#[tokio::test]
async fn overlap_skips_versions_the_store_no_longer_keeps() {
    let store = MemoryStore::builder().max_versions(2).build();
    let k = key("jwt/key");
    for v in ["a", "b", "c"] {
        store.store(&k, v.into()).await.unwrap();
    }
    let both = Overlap::read(&store, &k).await.unwrap();
    assert_eq!(both.current.value, "c".into());
    assert_eq!(both.previous.as_ref().unwrap().value, "b".into());
    assert_eq!(both.values().count(), 2);
    let only = MemoryStore::builder().max_versions(1).build();
    only.store(&k, "a".into()).await.unwrap();
    only.store(&k, "b".into()).await.unwrap();
    let one = Overlap::read(&only, &k).await.unwrap();
    assert!(one.previous.is_none());
    let err = Overlap::read(&store, &key("missing")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test(start_paused = true)]
async fn watch_emits_one_item_per_change_and_survives_an_outage() {
    let store = Arc::new(FaultStore::new(MemoryStore::new()));
    let faults = store.handle();
    let k = key("app/token");
    store.store(&k, "one".into()).await.unwrap();
    let mut watch = Watch::key(k.clone())
        .interval(Duration::from_secs(1))
        .with_values(true)
        .stream(store.clone());
    match watch.next().await.unwrap() {
        WatchEvent::Present {
            meta,
            value,
            initial: true,
            ..
        } => {
            assert_eq!(meta.version.as_deref(), Some("1"));
            assert_eq!(value.unwrap(), "one".into());
        }
        other => panic!("{other:?}"),
    }
    store.store(&k, "two".into()).await.unwrap();
    match watch.next().await.unwrap() {
        WatchEvent::Present {
            meta,
            initial: false,
            ..
        } => {
            assert_eq!(meta.version.as_deref(), Some("2"))
        }
        other => panic!("{other:?}"),
    }
    // An outage: one error item, however many polls fail.
    faults.fail_always(Operation::Get, ErrorKind::Unavailable);
    let item = watch.next().await.unwrap();
    assert_eq!(item.error_kind(), Some(ErrorKind::Unavailable), "{item:?}");
    let before = faults.calls(Operation::Get);
    tokio::time::sleep(Duration::from_secs(30)).await;
    store.store(&k, "three".into()).await.unwrap();
    // Recovers later: the next item is the version written during the outage.
    let recover = {
        let faults = faults.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            faults.clear();
        })
    };
    match watch.next().await.unwrap() {
        WatchEvent::Present {
            meta,
            value,
            initial: false,
            ..
        } => {
            assert_eq!(meta.version.as_deref(), Some("3"));
            assert_eq!(value.unwrap(), "three".into());
        }
        other => panic!("{other:?}"),
    }
    recover.await.unwrap();
    // The stream polls only while it is polled: through the 10 s before recovery, ~10 times.
    assert!(
        faults.calls(Operation::Get) >= before + 5,
        "the watch kept polling"
    );
    store.remove(&k).await.unwrap();
    assert!(matches!(
        watch.next().await.unwrap(),
        WatchEvent::Absent { initial: false, .. }
    ));
    store.store(&k, "again".into()).await.unwrap();
    assert!(matches!(
        watch.next().await.unwrap(),
        WatchEvent::Present { initial: false, .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn watch_of_a_prefix_reports_each_key() {
    let store = Arc::new(MemoryStore::new());
    store.put("svc/a", "1").await.unwrap();
    store.put("svc/b", "1").await.unwrap();
    store.put("other/c", "1").await.unwrap();
    let mut watch = Watch::prefix(KeyPrefix::new("svc/").unwrap())
        .interval(Duration::from_secs(1))
        .stream(store.clone());
    for name in ["svc/a", "svc/b"] {
        match watch.next().await.unwrap() {
            WatchEvent::Present {
                key,
                value: None,
                initial: true,
                ..
            } => assert_eq!(key.as_str(), name),
            other => panic!("{other:?}"),
        }
    }
    store.put("svc/b", "2").await.unwrap();
    store.remove(&key("svc/a")).await.unwrap();
    store.put("svc/new", "1").await.unwrap();
    let mut next = Vec::new();
    for _ in 0..3 {
        next.push(match watch.next().await.unwrap() {
            WatchEvent::Present {
                key,
                initial: false,
                ..
            } => format!("present {key}"),
            WatchEvent::Absent {
                key,
                initial: false,
            } => format!("absent {key}"),
            other => panic!("{other:?}"),
        });
    }
    next.sort();
    assert_eq!(next, ["absent svc/a", "present svc/b", "present svc/new"]);
}

/// A memory store whose versions are dated by Tokio's (pausable) clock, from `base`.
#[derive(Debug)]
struct Dated {
    inner: MemoryStore,
    base: SystemTime,
    start: tokio::time::Instant,
    created: Mutex<HashMap<(KeyName, String), SystemTime>>,
}

impl Dated {
    fn new(base: SystemTime) -> Self {
        Self {
            inner: MemoryStore::new(),
            base,
            start: tokio::time::Instant::now(),
            created: Mutex::new(HashMap::new()),
        }
    }
    fn now(&self) -> SystemTime {
        self.base + self.start.elapsed()
    }
    fn dated(&self, key: &KeyName, meta: SecretMeta) -> SecretMeta {
        let at = self.now();
        if let Some(v) = &meta.version {
            self.created
                .lock()
                .unwrap()
                .insert((key.clone(), v.to_string()), at);
        }
        meta.created_at(at)
    }
}

impl fmt::Display for Dated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dated({})", self.inner)
    }
}

#[async_trait]
impl KeyStore for Dated {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        let mut s = self.inner.get(key).await?;
        let v = s.meta.version.as_deref().unwrap_or_default().to_owned();
        s.meta.created_at = self.created.lock().unwrap().get(&(key.clone(), v)).copied();
        Ok(s)
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        let meta = self.inner.store(key, value).await?;
        Ok(self.dated(key, meta))
    }
    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> Result<SecretMeta> {
        let meta = self.inner.store_if_version(key, value, expected).await?;
        Ok(self.dated(key, meta))
    }
    async fn remove(&self, key: &KeyName) -> Result<()> {
        self.inner.remove(key).await
    }
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        self.inner.list(prefix).await
    }
    async fn health(&self) -> Result<()> {
        Ok(())
    }
}

const DAY: Duration = Duration::from_secs(86_400);

#[tokio::test(start_paused = true)]
async fn the_rotator_rotates_exactly_the_overdue_keys_until_dropped() {
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let store = Arc::new(Dated::new(base));
    for name in ["app/old-1", "app/old-2", "other/old"] {
        store.put(name, "v").await.unwrap();
    }
    tokio::time::advance(60 * DAY).await;
    store.put("app/fresh", "v").await.unwrap();
    tokio::time::advance(31 * DAY).await;

    let recorder = Arc::new(Recorder::default());
    let clock = {
        let store = store.clone();
        move || store.now()
    };
    let mut handle = Rotator::new(store.clone(), KeyPrefix::new("app/").unwrap())
        .interval(Duration::from_secs(3600))
        .concurrency(2)
        .rotation(Rotation::new().observer(recorder.clone()))
        .clock(clock)
        .spawn();
    let report = handle.next_report().await.unwrap();
    assert_eq!(report.examined, 3);
    let rotated: Vec<&str> = report.rotated.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(rotated, ["app/old-1", "app/old-2"]);
    assert!(report.is_complete(), "{report:?}");
    assert!(report.skipped.is_empty());
    for (name, version) in [
        ("app/old-1", "2"),
        ("app/old-2", "2"),
        ("app/fresh", "1"),
        ("other/old", "1"),
    ] {
        let now = store.get(&key(name)).await.unwrap();
        assert_eq!(now.meta.version.as_deref(), Some(version), "{name}");
    }
    assert_eq!(recorder.0.lock().unwrap().len(), 2);

    // The next run finds nothing due.
    let report = handle.next_report().await.unwrap();
    assert!(report.rotated.is_empty(), "{report:?}");

    // Dropped: nothing more is rotated, however much time passes.
    drop(handle);
    tokio::time::advance(200 * DAY).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let now = store.get(&key("app/fresh")).await.unwrap();
    assert_eq!(now.meta.version.as_deref(), Some("1"));
    assert_eq!(recorder.0.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn the_rotator_reports_what_it_could_not_rotate() {
    let store = Arc::new(FaultStore::new(MemoryStore::new()));
    store.put("app/a", "v").await.unwrap();
    store.put("app/b", "v").await.unwrap();
    store
        .handle()
        .fail_always(Operation::Store, ErrorKind::PermissionDenied);
    let rotator =
        Rotator::new(store.clone(), KeyPrefix::new("app/").unwrap()).max_age(Duration::ZERO);
    let report = rotator.run_once().await;
    assert!(report.rotated.is_empty());
    let failed: Vec<_> = report
        .failed
        .iter()
        .map(|f| (f.key.as_str(), f.kind()))
        .collect();
    assert_eq!(
        failed,
        [
            ("app/a", ErrorKind::PermissionDenied),
            ("app/b", ErrorKind::PermissionDenied)
        ]
    );
    store
        .handle()
        .fail_always(Operation::List, ErrorKind::Unavailable);
    let report = rotator.run_once().await;
    assert_eq!(
        report.list_error.map(|e| e.kind()),
        Some(ErrorKind::Unavailable)
    );
}
