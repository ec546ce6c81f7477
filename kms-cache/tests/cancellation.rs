//! A cache that stays correct when a caller gives up (dropped writes and loads), under churn,
//! without a runtime, and when a load panics: every `.await` is a point where the caller may
//! leave, and the cache's state must hold whichever one it leaves at.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt;
use futures::future::join_all;
use kms_cache::{CacheLayer, Capacity};
use kms_core::fault::FaultStore;
use kms_core::{
    Error, ErrorKind, KeyName, KeyPrefix, KeyStore, KeyStoreExt, MemoryStore, Operation,
    SecretMeta, SecretValue, StoreBuilder, StoredSecret, TimeoutLayer,
};

fn key(s: &str) -> KeyName {
    KeyName::new(s).unwrap()
}

/// A backend whose writes apply at once and answer a second later: a caller with a shorter
/// deadline gives up on a write that has landed.
#[derive(Debug)]
struct ApplyThenWait(Arc<MemoryStore>);

impl std::fmt::Display for ApplyThenWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApplyThenWait")
    }
}

#[kms_core::async_trait]
impl KeyStore for ApplyThenWait {
    fn backend(&self) -> &'static str {
        "memory"
    }
    fn capabilities(&self) -> kms_core::Capabilities {
        self.0.capabilities()
    }
    async fn get(&self, key: &KeyName) -> kms_core::Result<StoredSecret> {
        self.0.get(key).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> kms_core::Result<SecretMeta> {
        let meta = self.0.store(key, value).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        meta
    }
    async fn remove(&self, key: &KeyName) -> kms_core::Result<()> {
        let done = self.0.remove(key).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        done
    }
    async fn list(&self, prefix: &KeyPrefix) -> kms_core::Result<Vec<KeyName>> {
        self.0.list(prefix).await
    }
    async fn health(&self) -> kms_core::Result<()> {
        Ok(())
    }
}

/// A write dropped by its caller: `Timeout(300 ms)` → `Cache` → a backend that applies a write and
/// answers after 1 s. The caller gets a timeout; the next `get` must see what the backend holds
/// (the new value, or not-found after a remove), not the cached old value.
#[tokio::test(start_paused = true)]
async fn a_write_dropped_by_its_caller_invalidates() {
    let backend = Arc::new(MemoryStore::new());
    backend.put("k", "v1").await.unwrap();
    let store = StoreBuilder::new(ApplyThenWait(backend.clone()))
        .layer(TimeoutLayer::all(Duration::from_millis(300)))
        .layer(CacheLayer::new())
        .try_build()
        .unwrap();
    // Timeout is outermost here: it drops the cache's write future.
    let store = StoreBuilder::from_arc(store).build();
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "v1"
    );

    let err = store.put("k", "v2").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "v2"
    );

    let err = store.delete("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(
        store.get_value("k").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// Loads dropped by their callers: 300,000 `get`s of distinct keys against a backend that
/// never answers, each dropped after its first poll. Loads run detached from their callers
/// (so a caller leaving cannot hide a failure from the breaker below) and are bounded by the
/// load timeout: once it has passed, the in-flight bookkeeping is back to zero. (The memory
/// itself is measured by `tests/cancelled_loads_memory.rs`.)
#[tokio::test(start_paused = true)]
async fn dropped_loads_free_their_bookkeeping() {
    let backend = FaultStore::new(MemoryStore::new());
    backend.handle().hang(Operation::Get);
    let layer = CacheLayer::new().load_timeout(Duration::from_secs(5));
    let handle = layer.handle();
    let store = StoreBuilder::new(backend).layer(layer).build();
    let keys: Vec<KeyName> = (0..300_000).map(|i| key(&format!("leak/{i}"))).collect();
    for k in &keys {
        assert!(store.get(k).now_or_never().is_none());
    }
    assert_eq!(handle.loads_in_flight(), keys.len());
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(handle.loads_in_flight(), 0);
    let stats = handle.stats();
    assert_eq!((stats.entries, stats.load_failures), (0, 300_000));
}

/// Loads dropped by their callers, without a runtime to detach them on: the first caller runs the
/// load, and when it leaves, the flight is freed at once (a remaining waiter starts another).
#[test]
fn without_a_runtime_a_dropped_load_is_freed_when_its_caller_leaves() {
    let backend = FaultStore::new(MemoryStore::new());
    let faults = backend.handle();
    faults.hang(Operation::Get);
    let layer = CacheLayer::new();
    let handle = layer.handle();
    let store = StoreBuilder::new(backend).layer(layer).build(); // no runtime here
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for i in 0..1000 {
            assert!(store.get(&key(&format!("k{i}"))).now_or_never().is_none());
            assert_eq!(handle.loads_in_flight(), 0);
        }
        // Two waiters: the leader leaves, the other takes over and gets the answer.
        faults.clear();
        store.put("k", "v").await.unwrap();
        faults.set_latency(Operation::Get, Duration::from_millis(10));
        let k = key("k");
        let mut leader = Box::pin(store.get(&k));
        assert!((&mut leader).now_or_never().is_none());
        let follower = store.get(&k);
        drop(leader);
        assert_eq!(follower.await.unwrap().value.expose_secret(), b"v");
        assert_eq!(handle.loads_in_flight(), 0);
    });
}

/// Index and eviction policy under churn: capacity 8 entries, 24 keys, 4 threads, TTL 50 ms on a
/// mock clock, constant expiry, reload and eviction, `stats()` read concurrently. After settling,
/// the cache never serves more fresh entries than its capacity.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn capacity_holds_under_churn() {
    let (clock, time) = kms_cache::quanta::Clock::mock();
    let layer = CacheLayer::new()
        .capacity(Capacity::Entries(8))
        .ttl(Duration::from_millis(50))
        .clock(clock);
    let handle = layer.handle();
    let backend = MemoryStore::new();
    let keys: Vec<KeyName> = (0..24).map(|i| key(&format!("churn/{i}"))).collect();
    for k in &keys {
        backend.store(k, "v".into()).await.unwrap();
    }
    let store = StoreBuilder::new(backend).layer(layer).build();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (store, keys) = (store.clone(), keys.clone());
        tasks.push(tokio::spawn(async move {
            for round in 0..3000usize {
                let k = &keys[(round * 7 + t * 5) % keys.len()];
                store.get(k).await.unwrap();
            }
        }));
    }
    let ticker = {
        let (stop, handle) = (stop.clone(), handle.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                time.increment(Duration::from_millis(7));
                let _ = handle.stats();
                std::thread::yield_now();
            }
            time
        })
    };
    for task in tasks {
        task.await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let _time = ticker.join().unwrap();
    // Settled: every reload pass and eviction has run.
    for _ in 0..3 {
        let stats = handle.stats();
        assert!(stats.entries <= 8, "{stats:?}");
        let served = keys
            .iter()
            .filter(|k| store.get_now(k).is_some_and(|r| r.is_ok()))
            .count();
        assert!(
            served <= 8,
            "{served} fresh entries served, capacity 8: {stats:?}"
        );
    }
    // And a reload pass over every key keeps the bound.
    for k in &keys {
        store.get(k).await.unwrap();
    }
    let _ = handle.stats();
    let served = keys.iter().filter(|k| store.get_now(k).is_some()).count();
    assert!(served <= 8, "{served} served after a reload pass");
}

/// Refresh-ahead without a runtime: an entry past its refresh point, read with `get_now` from a
/// plain thread and with `get` under `futures::executor::block_on`, from a cache built outside any
/// runtime: the hit is returned, the background reload skipped and counted (no panic).
#[test]
fn refresh_ahead_without_a_runtime_answers_and_counts_the_skip() {
    let (clock, time) = kms_cache::quanta::Clock::mock();
    let layer = CacheLayer::new()
        .ttl(Duration::from_secs(60))
        .jitter(0.0)
        .refresh_ahead(0.5)
        .clock(clock);
    let handle = layer.handle();
    let backend = FaultStore::new(MemoryStore::new());
    let calls = backend.handle();
    let store = StoreBuilder::new(backend).layer(layer).build();
    futures::executor::block_on(async {
        store.put("k", "v").await.unwrap();
        store.get_value("k").await.unwrap();
    });
    time.increment(Duration::from_secs(40));
    let store2 = store.clone();
    let hit = std::thread::spawn(move || store2.get_now(&key("k")).unwrap().unwrap())
        .join()
        .unwrap();
    assert_eq!(hit.value.expose_secret(), b"v");
    let hit = futures::executor::block_on(store.get(&key("k"))).unwrap();
    assert_eq!(hit.value.expose_secret(), b"v");
    assert_eq!(calls.calls(Operation::Get), 1);
    assert_eq!(handle.stats().refreshes_skipped, 1);
}

/// Refresh-ahead with a runtime at build time: the reload runs on the captured handle,
/// even when the hit is read from a thread outside the runtime.
#[test]
fn refresh_ahead_runs_on_the_runtime_captured_at_build() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (clock, time) = kms_cache::quanta::Clock::mock();
    let layer = CacheLayer::new()
        .ttl(Duration::from_secs(60))
        .jitter(0.0)
        .refresh_ahead(0.5)
        .clock(clock);
    let handle = layer.handle();
    let store = {
        let _entered = rt.enter();
        StoreBuilder::new(MemoryStore::new()).layer(layer).build()
    };
    rt.block_on(async {
        store.put("k", "v").await.unwrap();
        store.get_value("k").await.unwrap();
    });
    time.increment(Duration::from_secs(40));
    assert!(store.get_now(&key("k")).unwrap().is_ok());
    for _ in 0..1000 {
        if handle.stats().loads == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let stats = handle.stats();
    assert_eq!((stats.loads, stats.refreshes_skipped), (2, 0), "{stats:?}");
}

/// A backend whose `get` panics the first `n` times.
#[derive(Debug)]
struct PanicsFirst(MemoryStore, AtomicU64);

impl std::fmt::Display for PanicsFirst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PanicsFirst")
    }
}

#[kms_core::async_trait]
impl KeyStore for PanicsFirst {
    fn backend(&self) -> &'static str {
        "memory"
    }
    fn capabilities(&self) -> kms_core::Capabilities {
        self.0.capabilities()
    }
    async fn get(&self, key: &KeyName) -> kms_core::Result<StoredSecret> {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if self
            .1
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            panic!("backend bug");
        }
        self.0.get(key).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> kms_core::Result<SecretMeta> {
        self.0.store(key, value).await
    }
    async fn remove(&self, key: &KeyName) -> kms_core::Result<()> {
        self.0.remove(key).await
    }
    async fn list(&self, prefix: &KeyPrefix) -> kms_core::Result<Vec<KeyName>> {
        self.0.list(prefix).await
    }
    async fn health(&self) -> kms_core::Result<()> {
        Ok(())
    }
}

/// Panicking loads: N waiters of a load that panics make one call and get one typed
/// `Backend` error each; nothing is cached and the next `get` tries again.
#[tokio::test(start_paused = true)]
async fn a_panicking_load_is_one_call_and_a_typed_error_for_every_waiter() {
    let layer = CacheLayer::new();
    let handle = layer.handle();
    let backend = PanicsFirst(MemoryStore::new(), AtomicU64::new(1));
    backend.0.put("k", "v").await.unwrap();
    let store = StoreBuilder::new(backend).layer(layer).build();
    let k = key("k");
    let results = join_all((0..50).map(|_| store.get(&k))).await;
    for r in &results {
        let err: &Error = r.as_ref().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Backend);
        assert!(err.message().contains("panicked"), "{err}");
    }
    let stats = handle.stats();
    assert_eq!(
        (stats.load_failures, stats.entries, stats.loads_in_flight),
        (1, 0, 0)
    );
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "v"
    );
}

/// Every setting is checked when the cache is built, by name.
#[tokio::test]
async fn every_setting_is_validated_by_name() {
    let zero = Duration::ZERO;
    let bad = [
        (CacheLayer::new().ttl(zero), "ttl"),
        (CacheLayer::new().time_to_idle(zero), "time_to_idle"),
        (CacheLayer::new().stale_if_error(zero), "stale_if_error"),
        (CacheLayer::new().negative_ttl(zero), "negative_ttl"),
        (CacheLayer::new().load_timeout(zero), "load_timeout"),
        (CacheLayer::new().jitter(-0.1), "jitter"),
        (CacheLayer::new().jitter(0.95), "jitter"),
        (CacheLayer::new().jitter(f64::NAN), "jitter"),
        (CacheLayer::new().refresh_ahead(0.0), "refresh_ahead"),
        (CacheLayer::new().refresh_ahead(1.5), "refresh_ahead"),
        (CacheLayer::new().capacity(Capacity::Entries(0)), "capacity"),
        (CacheLayer::new().capacity(Capacity::Bytes(0)), "capacity"),
    ];
    for (layer, setting) in bad {
        let err = StoreBuilder::new(MemoryStore::new())
            .layer(layer.clone())
            .try_build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration);
        assert!(
            err.message().contains(&format!("`{setting}`")),
            "{setting}: {err}"
        );
        assert!(layer.try_wrap(MemoryStore::new()).is_err());
        // Built anyway: every call answers the error, nothing looks empty.
        let backend = FaultStore::new(MemoryStore::new());
        let calls = backend.handle();
        let store = layer.wrap(backend);
        for err in [
            store.get_value("k").await.unwrap_err(),
            store.put("k", "v").await.unwrap_err(),
            store.delete("k").await.unwrap_err(),
            store.health().await.unwrap_err(),
        ] {
            assert_eq!(err.kind(), ErrorKind::Configuration, "{setting}");
        }
        assert_eq!(calls.total_calls(), 0, "{setting}");
    }
    CacheLayer::new()
        .jitter(0.9)
        .refresh_ahead(1.0)
        .stale_while_revalidate(zero)
        .validate()
        .unwrap();
}

/// A cache whose runtime has shut down (built in one runtime, used after it is gone) still
/// answers: its loads run in their callers instead of spinning on a dead runtime.
#[test]
fn a_cache_outliving_its_runtime_still_loads() {
    let backend = std::sync::Arc::new(MemoryStore::new());
    let store = {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let store = rt.block_on(async {
            StoreBuilder::from_arc(backend.clone())
                .layer(CacheLayer::new())
                .build()
        });
        drop(rt);
        store
    };
    futures::executor::block_on(async {
        backend.put("k", "v").await.unwrap();
        assert_eq!(
            store.get_value("k").await.unwrap().expose_str().unwrap(),
            "v"
        );
    });
}

/// A network backend whose writes run to completion on their own task (as every backend's
/// [`WriteOrder`](kms_core::WriteOrder) makes them): the write reaches the server a second
/// after it was sent, whether or not its caller is still waiting.
#[derive(Debug)]
struct LandsLater(Arc<MemoryStore>, kms_core::WriteOrder);

impl std::fmt::Display for LandsLater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LandsLater")
    }
}

#[kms_core::async_trait]
impl KeyStore for LandsLater {
    fn backend(&self) -> &'static str {
        "memory"
    }
    fn capabilities(&self) -> kms_core::Capabilities {
        self.0.capabilities()
    }
    async fn get(&self, key: &KeyName) -> kms_core::Result<StoredSecret> {
        self.0.get(key).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> kms_core::Result<SecretMeta> {
        let (inner, k) = (self.0.clone(), key.clone());
        self.1
            .run(key, async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                inner.store(&k, value).await
            })
            .await
    }
    async fn remove(&self, key: &KeyName) -> kms_core::Result<()> {
        let (inner, k) = (self.0.clone(), key.clone());
        self.1
            .run(key, async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                inner.remove(&k).await
            })
            .await
    }
    async fn list(&self, prefix: &KeyPrefix) -> kms_core::Result<Vec<KeyName>> {
        self.0.list(prefix).await
    }
    async fn health(&self) -> kms_core::Result<()> {
        Ok(())
    }
}

/// A dropped write that lands *after* its caller gave up (it was on the wire,
/// or the backend runs it to completion): a `get` between the caller leaving and the write
/// landing reads the old value from the backend, and that read must not be cached, or the
/// old value is served for a whole TTL after the write landed.
#[tokio::test(start_paused = true)]
async fn a_dropped_write_that_lands_later_is_not_hidden_by_a_read_in_between() {
    let backend = Arc::new(MemoryStore::new());
    backend.put("k", "v1").await.unwrap();
    let store = StoreBuilder::new(LandsLater(backend.clone(), kms_core::WriteOrder::new()))
        .layer(CacheLayer::new())
        .layer(TimeoutLayer::all(Duration::from_millis(300)))
        .try_build()
        .unwrap();
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "v1"
    );

    assert_eq!(
        store.put("k", "v2").await.unwrap_err().kind(),
        ErrorKind::Timeout
    );
    // Before the write lands, the old value is a right answer (the write has not happened).
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "v1"
    );
    // Once it has landed, the cache must not still hold the read made before.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        backend.get_value("k").await.unwrap().expose_str().unwrap(),
        "v2"
    );
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "v2"
    );

    assert_eq!(
        store.delete("k").await.unwrap_err().kind(),
        ErrorKind::Timeout
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "v2"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        store.get_value("k").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// A backend whose reads take the value at once and answer 500 ms later (a load in flight
/// holds an old value), and whose writes apply at once and answer a second later.
#[derive(Debug)]
struct ReadThenWait(Arc<MemoryStore>);

impl std::fmt::Display for ReadThenWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadThenWait")
    }
}

#[kms_core::async_trait]
impl KeyStore for ReadThenWait {
    fn backend(&self) -> &'static str {
        "memory"
    }
    fn capabilities(&self) -> kms_core::Capabilities {
        self.0.capabilities()
    }
    async fn get(&self, key: &KeyName) -> kms_core::Result<StoredSecret> {
        let got = self.0.get(key).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        got
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> kms_core::Result<SecretMeta> {
        let meta = self.0.store(key, value).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        meta
    }
    async fn remove(&self, key: &KeyName) -> kms_core::Result<()> {
        let done = self.0.remove(key).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        done
    }
    async fn list(&self, prefix: &KeyPrefix) -> kms_core::Result<Vec<KeyName>> {
        self.0.list(prefix).await
    }
    async fn health(&self) -> kms_core::Result<()> {
        Ok(())
    }
}

/// A load of `k` holding the old value is in flight when a write of `k` is dropped by its
/// caller (after it landed); the load then ends: it must not re-insert the old value, for
/// the caller that started it, a refresh-ahead, or a refresh through the handle.
#[tokio::test(start_paused = true)]
async fn a_load_in_flight_when_a_write_is_dropped_does_not_reinsert_the_old_value() {
    let backend = Arc::new(MemoryStore::new());
    backend.put("k", "v1").await.unwrap();
    let layer = CacheLayer::new().refresh_ahead(0.5);
    let handle = layer.handle();
    let cache = StoreBuilder::new(ReadThenWait(backend.clone()))
        .layer(layer)
        .try_build()
        .unwrap();
    let store = StoreBuilder::from_arc(cache.clone())
        .layer(TimeoutLayer::all(Duration::from_millis(300)))
        .try_build()
        .unwrap();
    let k = key("k");
    for (write, want) in [("store", Ok("v2")), ("remove", Err(ErrorKind::NotFound))] {
        // A load in flight, holding what the backend had when it read.
        let load = tokio::spawn({
            let (cache, k) = (cache.clone(), k.clone());
            async move { cache.get(&k).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let refresh = tokio::spawn({
            let (handle, k) = (handle.clone(), k.clone());
            async move { handle.refresh(&k).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let err = match write {
            "store" => store.put("k", "v2").await.unwrap_err(),
            _ => store.delete("k").await.unwrap_err(),
        };
        assert_eq!(err.kind(), ErrorKind::Timeout);
        let _ = load.await.unwrap();
        let _ = refresh.await.unwrap();
        let got = cache.get(&k).await;
        let got = got
            .as_ref()
            .map(|s| s.value.expose_str().unwrap())
            .map_err(|e| e.kind());
        assert_eq!(got, want, "after a dropped {write}");
        assert_eq!(handle.loads_in_flight(), 0);
    }
}
