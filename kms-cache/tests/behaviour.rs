//! The cache's behaviour, deterministically: FaultStore for the backend, a mocked cache clock
//! (`CacheLayer::clock`) for expiry, tokio's paused clock for backend latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::join_all;
use kms_cache::{CacheLayer, CacheObserver, Capacity, EvictionCause};
use kms_core::fault::{FaultHandle, FaultStore};
use kms_core::{ErrorKind, KeyName, KeyStore, KeyStoreExt, MemoryStore, Operation, StoreBuilder};

fn key(s: &str) -> KeyName {
    KeyName::new(s).unwrap()
}

/// A store with `values` preloaded (directly in the backend), wrapped in `layer`.
async fn cached(layer: CacheLayer, values: &[(&str, &str)]) -> (Arc<dyn KeyStore>, FaultHandle) {
    let backend = MemoryStore::new();
    for (k, v) in values {
        backend.put(k, *v).await.unwrap();
    }
    let backend = FaultStore::new(backend);
    let faults = backend.handle();
    (StoreBuilder::new(backend).layer(layer).build(), faults)
}

#[tokio::test(start_paused = true)]
async fn a_thousand_concurrent_cold_gets_make_one_backend_call() {
    let (store, faults) = cached(CacheLayer::new(), &[("hot", "v")]).await;
    faults.set_latency(Operation::Get, Duration::from_millis(50));
    let k = key("hot");
    let results = join_all((0..1000).map(|_| store.get(&k))).await;
    assert_eq!(faults.calls(Operation::Get), 1);
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap().value.expose_secret() == b"v")
    );
}

#[tokio::test(start_paused = true)]
async fn concurrent_waiters_share_an_error_which_is_not_cached() {
    let layer = CacheLayer::new();
    let stats = layer.handle();
    let (store, faults) = cached(layer, &[("k", "v")]).await;
    faults.set_latency(Operation::Get, Duration::from_millis(50));
    faults.fail_next(Operation::Get, 1, ErrorKind::Unavailable);
    let k = key("k");
    let results = join_all((0..200).map(|_| store.get(&k))).await;
    assert_eq!(faults.calls(Operation::Get), 1);
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap_err().kind() == ErrorKind::Unavailable)
    );
    // Not cached: the next get goes to the backend and succeeds.
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "v"
    );
    assert_eq!(faults.calls(Operation::Get), 2);
    let s = stats.stats();
    assert_eq!((s.loads, s.load_failures, s.misses), (1, 1, 201));
}

#[tokio::test(start_paused = true)]
async fn hits_do_not_touch_the_backend() {
    let layer = CacheLayer::new();
    let stats = layer.handle();
    let (store, faults) = cached(layer, &[("k", "v")]).await;
    for _ in 0..10 {
        store.get_value("k").await.unwrap();
    }
    assert_eq!(faults.calls(Operation::Get), 1);
    let s = stats.stats();
    assert_eq!((s.hits, s.misses, s.entries), (9, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn get_now_answers_hits_only_and_never_calls_the_backend() {
    let (clock, time) = kms_cache::quanta::Clock::mock();
    let layer = CacheLayer::new()
        .clock(clock.clone())
        .ttl(Duration::from_secs(60))
        .jitter(0.0)
        .negative_ttl(Duration::from_secs(60));
    let stats = layer.handle();
    let (store, faults) = cached(layer, &[("k", "v")]).await;
    // Cold: no answer, no backend call, nothing counted.
    assert!(store.get_now(&key("k")).is_none());
    assert_eq!(faults.calls(Operation::Get), 0);
    assert_eq!((stats.stats().hits, stats.stats().misses), (0, 0));
    // Loaded by a get, then answered at once and counted as a hit.
    store.get(&key("k")).await.unwrap();
    let hit = store.get_now(&key("k")).expect("a hit").unwrap();
    assert_eq!(hit.value.expose_secret(), b"v");
    assert_eq!((stats.stats().hits, stats.stats().misses), (1, 1));
    // A cached not-found is a hit too, answered as not-found.
    assert!(store.get(&key("missing")).await.is_err());
    let err = store
        .get_now(&key("missing"))
        .expect("a negative hit")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // Expired: no answer; the next get goes to the backend.
    time.increment(Duration::from_secs(61));
    assert!(store.get_now(&key("k")).is_none());
    assert_eq!(faults.calls(Operation::Get), 2);
    store.get(&key("k")).await.unwrap();
    assert_eq!(faults.calls(Operation::Get), 3);
}

/// A backend whose reads take a snapshot at once and answer 100 ms later: the slowest kind of
/// read for a cache, because its answer is already old when it arrives.
#[derive(Debug)]
struct SnapshotThenWait(MemoryStore);

impl std::fmt::Display for SnapshotThenWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotThenWait")
    }
}

#[kms_core::async_trait]
impl KeyStore for SnapshotThenWait {
    fn backend(&self) -> &'static str {
        "memory"
    }
    fn capabilities(&self) -> kms_core::Capabilities {
        self.0.capabilities()
    }
    async fn get(&self, key: &KeyName) -> kms_core::Result<kms_core::StoredSecret> {
        let snapshot = self.0.get(key).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        snapshot
    }
    async fn store(
        &self,
        key: &KeyName,
        value: kms_core::SecretValue,
    ) -> kms_core::Result<kms_core::SecretMeta> {
        self.0.store(key, value).await
    }
    async fn remove(&self, key: &KeyName) -> kms_core::Result<()> {
        self.0.remove(key).await
    }
    async fn list(&self, prefix: &kms_core::KeyPrefix) -> kms_core::Result<Vec<KeyName>> {
        self.0.list(prefix).await
    }
    async fn health(&self) -> kms_core::Result<()> {
        Ok(())
    }
}

/// A load that started before a write must not put the old value back afterwards.
#[tokio::test(start_paused = true)]
async fn a_load_in_flight_during_a_write_is_not_cached() {
    let backend = MemoryStore::new();
    backend.put("k", "old").await.unwrap();
    let backend = FaultStore::new(SnapshotThenWait(backend));
    let faults = backend.handle();
    let store = StoreBuilder::new(backend).layer(CacheLayer::new()).build();

    let reader = {
        let store = store.clone();
        tokio::spawn(async move { store.get_value("k").await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await; // the load has read "old" and waits
    store.put("k", "new").await.unwrap();
    // The early reader asked before the write: it gets the snapshot it read.
    assert_eq!(reader.await.unwrap().unwrap().expose_str().unwrap(), "old");
    // Nobody after the write may see it: the superseded load was not cached.
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "new"
    );
    assert_eq!(faults.calls(Operation::Get), 2);
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "new"
    );
    assert_eq!(
        faults.calls(Operation::Get),
        2,
        "and the new value is cached"
    );
}

#[tokio::test(start_paused = true)]
async fn writes_and_removes_invalidate() {
    let (store, faults) = cached(CacheLayer::new(), &[("k", "v1")]).await;
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "v1"
    );
    store.put("k", "v2").await.unwrap();
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "v2"
    );
    store.delete("k").await.unwrap();
    assert!(store.get_value("k").await.unwrap_err().is_not_found());
    assert_eq!(faults.calls(Operation::Get), 3);
}

#[tokio::test(start_paused = true)]
async fn ttl_expires_and_jitter_only_shortens_it() {
    let (clock, time) = kms_cache::quanta::Clock::mock();
    let names: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    let values: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    let (store, faults) = cached(
        CacheLayer::new()
            .clock(clock.clone())
            .ttl(Duration::from_secs(100))
            .jitter(0.1),
        &values,
    )
    .await;
    let read_all = || async {
        let before = faults.calls(Operation::Get);
        for n in &names {
            store.get_value(n).await.unwrap();
        }
        faults.calls(Operation::Get) - before
    };
    assert_eq!(read_all().await, 200, "cold");
    time.increment(Duration::from_millis(89_999));
    assert_eq!(
        read_all().await,
        0,
        "nothing expires before TTL x (1 - jitter)"
    );
    time.increment(Duration::from_secs(5)); // t = 95 s: inside the jitter band
    let expired_mid_band = read_all().await;
    assert!(
        (1..200).contains(&expired_mid_band),
        "jitter spreads expiry over the band, got {expired_mid_band} of 200"
    );
    time.increment(Duration::from_secs(100));
    assert_eq!(read_all().await, 200, "everything expires by TTL");
}

#[tokio::test(start_paused = true)]
async fn time_to_idle_expires_unread_entries() {
    let (clock, time) = kms_cache::quanta::Clock::mock();
    let layer = CacheLayer::new()
        .clock(clock.clone())
        .ttl(Duration::from_secs(600))
        .jitter(0.0)
        .time_to_idle(Duration::from_secs(60));
    let (store, faults) = cached(layer, &[("busy", "v"), ("idle", "v")]).await;
    store.get_value("busy").await.unwrap();
    store.get_value("idle").await.unwrap();
    for _ in 0..4 {
        time.increment(Duration::from_secs(40));
        store.get_value("busy").await.unwrap();
    }
    assert_eq!(
        faults.calls(Operation::Get),
        2,
        "read every 40 s: never idle for 60 s"
    );
    store.get_value("idle").await.unwrap();
    assert_eq!(faults.calls(Operation::Get), 3, "unread for 160 s: expired");
}

#[tokio::test(start_paused = true)]
async fn refresh_ahead_makes_exactly_one_background_load() {
    let (clock, time) = kms_cache::quanta::Clock::mock();
    let layer = CacheLayer::new()
        .clock(clock.clone())
        .ttl(Duration::from_secs(100))
        .jitter(0.0)
        .refresh_ahead(0.5);
    let (store, faults) = cached(layer, &[("k", "v1")]).await;
    store.get_value("k").await.unwrap();
    store.put("k", "v2").await.unwrap(); // through the cache: invalidates
    store.get_value("k").await.unwrap();
    assert_eq!(faults.calls(Operation::Get), 2);

    // Pass half the TTL; reloads now take 10 ms.
    faults.set_latency(Operation::Get, Duration::from_millis(10));
    time.increment(Duration::from_secs(51));
    let hits = join_all((0..50).map(|_| store.get_value("k"))).await;
    assert!(
        hits.iter()
            .all(|h| h.as_ref().unwrap().expose_str().unwrap() == "v2"),
        "served at once"
    );
    tokio::time::sleep(Duration::from_millis(20)).await; // let the background load finish
    assert_eq!(
        faults.calls(Operation::Get),
        3,
        "exactly one background reload"
    );
    // The refreshed entry is fresh again: no more reloads until half its TTL.
    for _ in 0..10 {
        store.get_value("k").await.unwrap();
    }
    assert_eq!(faults.calls(Operation::Get), 3);
}

#[tokio::test(start_paused = true)]
async fn stale_if_error_serves_within_the_window_and_fails_after() {
    let (clock, time) = kms_cache::quanta::Clock::mock();
    let layer = CacheLayer::new()
        .clock(clock.clone())
        .ttl(Duration::from_secs(60))
        .jitter(0.0)
        .stale_if_error(Duration::from_secs(120));
    let stats = layer.handle();
    let (store, faults) = cached(layer, &[("k", "v")]).await;
    store.get_value("k").await.unwrap();
    faults.fail_always(Operation::Get, ErrorKind::Unavailable);

    time.increment(Duration::from_secs(61));
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "v"
    );
    time.increment(Duration::from_secs(100)); // 101 s past expiry
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "v"
    );
    assert_eq!(stats.stats().stale_serves, 2);

    time.increment(Duration::from_secs(20)); // 121 s past expiry
    assert_eq!(
        store.get_value("k").await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
}

#[tokio::test(start_paused = true)]
async fn stale_if_error_never_hides_not_found_or_permission_errors() {
    let (clock, time) = kms_cache::quanta::Clock::mock();
    for kind in [
        ErrorKind::NotFound,
        ErrorKind::PermissionDenied,
        ErrorKind::Unauthenticated,
    ] {
        let layer = CacheLayer::new()
            .clock(clock.clone())
            .ttl(Duration::from_secs(60))
            .jitter(0.0)
            .stale_if_error(Duration::from_secs(600));
        let (store, faults) = cached(layer, &[("k", "v")]).await;
        store.get_value("k").await.unwrap();
        faults.fail_always(Operation::Get, kind);
        time.increment(Duration::from_secs(61));
        assert_eq!(store.get_value("k").await.unwrap_err().kind(), kind);
    }
    // ...but serves through an open circuit.
    let layer = CacheLayer::new()
        .clock(clock.clone())
        .ttl(Duration::from_secs(60))
        .jitter(0.0)
        .stale_if_error(Duration::from_secs(600));
    let (store, faults) = cached(layer, &[("k", "v")]).await;
    store.get_value("k").await.unwrap();
    faults.fail_always(Operation::Get, ErrorKind::CircuitOpen);
    time.increment(Duration::from_secs(61));
    assert!(store.get_value("k").await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn negative_caching_remembers_not_found_until_it_expires() {
    let (clock, time) = kms_cache::quanta::Clock::mock();
    let layer = CacheLayer::new()
        .clock(clock.clone())
        .negative_ttl(Duration::from_secs(10));
    let (store, faults) = cached(layer, &[]).await;
    for _ in 0..5 {
        assert!(store.get_value("ghost").await.unwrap_err().is_not_found());
    }
    assert_eq!(faults.calls(Operation::Get), 1);
    time.increment(Duration::from_secs(11));
    assert!(store.get_value("ghost").await.unwrap_err().is_not_found());
    assert_eq!(faults.calls(Operation::Get), 2);
    // A write through the cache ends the negative entry at once.
    store.put("ghost", "here").await.unwrap();
    assert_eq!(
        store
            .get_value("ghost")
            .await
            .unwrap()
            .expose_str()
            .unwrap(),
        "here"
    );

    // Without negative caching, every miss asks the backend.
    let (store, faults) = cached(CacheLayer::new().clock(clock.clone()), &[]).await;
    for _ in 0..3 {
        assert!(store.get_value("ghost").await.is_err());
    }
    assert_eq!(faults.calls(Operation::Get), 3);
}

#[tokio::test]
async fn capacity_by_bytes_evicts_by_size() {
    let layer = CacheLayer::new().capacity(Capacity::Bytes(10_000));
    let handle = layer.handle();
    let values: Vec<(String, String)> = (0..100)
        .map(|i| (format!("k{i:03}"), "x".repeat(900)))
        .collect();
    let refs: Vec<(&str, &str)> = values
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (store, faults) = cached(layer, &refs).await;
    for (k, _) in &values {
        store.get_value(k).await.unwrap();
    }
    let stats = handle.stats();
    assert!(stats.weighted_bytes <= 10_000, "{stats:?}");
    assert!(stats.entries <= 10 && stats.entries > 0, "{stats:?}");
    assert!(stats.evictions_size >= 80, "{stats:?}");
    // Evicted entries are gone from the read path too: reading everything again loads at
    // least the evicted keys, and every answer is still right.
    let before = faults.calls(Operation::Get);
    for (k, v) in &values {
        assert_eq!(store.get_value(k).await.unwrap().expose_str().unwrap(), v);
    }
    assert!(faults.calls(Operation::Get) - before >= 80);
}

#[tokio::test]
async fn capacity_by_entries_keeps_hot_keys_under_pressure() {
    let layer = CacheLayer::new().capacity(Capacity::Entries(50));
    let handle = layer.handle();
    let names: Vec<String> = (0..251).map(|i| format!("k{i:03}")).collect();
    let values: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    let (store, faults) = cached(layer, &values).await;
    let (hot, rest) = names.split_at(10);
    let (filler, rest) = rest.split_at(40);
    let (cold, newcomer) = rest.split_at(200);
    // A full cache: 10 hot keys, read over and over (hits), and 40 fillers.
    for k in hot.iter().chain(filler) {
        store.get_value(k).await.unwrap();
    }
    assert_eq!(handle.stats().entries, 50);
    for _ in 0..100 {
        for k in hot {
            store.get_value(k).await.unwrap();
        }
    }
    // A scan of 200 cold keys, each read three times: each is seen (and admitted) more often
    // than a key moka never heard read.
    for k in cold {
        for _ in 0..3 {
            store.get_value(k).await.unwrap();
        }
    }
    let stats = handle.stats();
    assert!(stats.entries <= 50, "{stats:?}");
    assert!(stats.evictions_size > 0, "{stats:?}");
    // Hits under pressure were reported to moka, so the hot keys survived the scan.
    let before = faults.calls(Operation::Get);
    for k in hot {
        store.get_value(k).await.unwrap();
    }
    let reloads = faults.calls(Operation::Get) - before;
    assert!(
        reloads <= 2,
        "{reloads} of the 10 hot keys were evicted; {stats:?}"
    );
    // A full cache still takes in a key that becomes hot: its misses count, and it is
    // admitted over a colder victim after a few reads. The hot keys are read on first, so
    // the least recently used entries (moka's victims) are the colder scan survivors (one
    // hit in eight is replayed to moka: a hundred rounds move every hot key); a key as hot
    // as the hot keys is rightly not admitted over them by TinyLFU.
    for _ in 0..100 {
        for k in hot {
            store.get_value(k).await.unwrap();
        }
    }
    let newcomer = &newcomer[0];
    let before = faults.calls(Operation::Get);
    for _ in 0..20 {
        store.get_value(newcomer).await.unwrap();
    }
    let loads = faults.calls(Operation::Get) - before;
    assert!(loads <= 5, "{loads} loads of a key read 20 times in a row");
}

#[derive(Default)]
struct Counting {
    hits: AtomicU64,
    misses: AtomicU64,
    loads: AtomicU64,
    explicit: AtomicU64,
    last_size: AtomicU64,
}

impl CacheObserver for Counting {
    fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }
    fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }
    fn load(&self, ok: bool) {
        if ok {
            self.loads.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn eviction(&self, cause: EvictionCause) {
        if cause == EvictionCause::Explicit {
            self.explicit.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn size(&self, entries: u64, _: u64) {
        self.last_size.store(entries, Ordering::Relaxed);
    }
}

#[tokio::test]
async fn events_are_pushed_to_the_observer() {
    let observer = Arc::new(Counting::default());
    let layer = CacheLayer::new().observer(observer.clone());
    let handle = layer.handle();
    let (store, _) = cached(layer, &[("a", "1"), ("b", "2")]).await;
    for _ in 0..3 {
        store.get_value("a").await.unwrap();
        store.get_value("b").await.unwrap();
    }
    assert_eq!(observer.hits.load(Ordering::Relaxed), 4);
    assert_eq!(observer.misses.load(Ordering::Relaxed), 2);
    assert_eq!(observer.loads.load(Ordering::Relaxed), 2);
    handle.invalidate_all();
    let stats = handle.stats();
    assert_eq!(stats.entries, 0);
    assert_eq!(observer.last_size.load(Ordering::Relaxed), 0);
    assert_eq!(stats.evictions_explicit, 2);
    assert_eq!(observer.explicit.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn handle_invalidates_and_refreshes() {
    let backend = Arc::new(MemoryStore::new());
    backend.put("k", "v1").await.unwrap();
    let layer = CacheLayer::new();
    let handle = layer.handle();
    let store = StoreBuilder::from_arc(backend.clone()).layer(layer).build();
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "v1"
    );
    backend.put("k", "v2").await.unwrap(); // behind the cache's back
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "v1",
        "still cached"
    );
    let refreshed = handle.refresh(&key("k")).await.unwrap();
    assert_eq!(refreshed.value.expose_str().unwrap(), "v2");
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "v2"
    );
    backend.put("k", "v3").await.unwrap();
    handle.invalidate(&key("k"));
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "v3"
    );
}

#[tokio::test]
async fn debug_and_display_show_no_secrets() {
    let layer = CacheLayer::new();
    let (store, _) = cached(layer.clone(), &[("k", "hunter2-secret")]).await;
    store.get_value("k").await.unwrap();
    let shown = format!("{store} {store:?} {layer:?} {:?}", layer.handle());
    assert!(!shown.contains("hunter2"), "{shown}");
    assert_eq!(store.to_string(), "Cache(Fault(Memory))");
    let unbuilt = CacheLayer::new().handle();
    assert_eq!(unbuilt.stats().hits, 0);
    assert_eq!(
        unbuilt.refresh(&key("k")).await.unwrap_err().kind(),
        ErrorKind::Configuration
    );
}

/// Read-your-writes under churn: writers on 4 threads, each owning its keys, write and read
/// back through a cache much smaller than the key set, so moka evicts constantly while entries
/// are inserted, replaced and invalidated. A reader must never see a value older than its own
/// last write, and the cache must stay within its budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_your_writes_under_eviction_churn() {
    let layer = CacheLayer::new().capacity(Capacity::Entries(8));
    let handle = layer.handle();
    let store = StoreBuilder::new(MemoryStore::new()).layer(layer).build();
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for round in 0..200u32 {
                    let name = format!("t{t}/k{}", round % 16);
                    let value = format!("{round}");
                    store.put(&name, value.as_str()).await.unwrap();
                    for _ in 0..3 {
                        let got = store.get_value(&name).await.unwrap();
                        assert_eq!(
                            got.expose_str().unwrap(),
                            value,
                            "{name} after round {round}"
                        );
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let stats = handle.stats();
    assert!(stats.entries <= 8, "{stats:?}");
    assert!(stats.evictions_size > 0, "{stats:?}");
}

/// Entries past any use (expired, and past the stale window) are swept from memory by a later
/// miss, even if nobody reads them again, and counted as expired.
#[tokio::test]
async fn dead_entries_are_swept_and_counted_as_expired() {
    let (clock, time) = kms_cache::quanta::Clock::mock();
    let layer = CacheLayer::new()
        .clock(clock)
        .ttl(Duration::from_secs(60))
        .jitter(0.0)
        .stale_if_error(Duration::from_secs(30));
    let handle = layer.handle();
    let (store, _) = cached(layer, &[("a", "1"), ("b", "2"), ("c", "3")]).await;
    store.get_value("a").await.unwrap();
    store.get_value("b").await.unwrap();
    assert_eq!(handle.stats().entries, 2);

    // Expired but inside the stale window: kept (stale-if-error may still serve them).
    time.increment(Duration::from_secs(80));
    store.get_value("c").await.unwrap();
    let s = handle.stats();
    assert_eq!((s.entries, s.evictions_expired), (3, 0), "{s:?}");

    // a and b past their stale window (t = 140 s > 90 s): the next miss sweeps them; c, loaded
    // at 80 s, is still within its window and stays.
    time.increment(Duration::from_secs(60));
    assert!(store.get_value("missing").await.is_err());
    let s = handle.stats();
    assert_eq!((s.entries, s.evictions_expired), (1, 2), "{s:?}");
}

/// Durations as long as a `Duration` holds ("never expire", "always serve stale"): every
/// path that adds them to the clock (insert, stale window, negative entry, the mark a failed
/// write leaves) works instead of panicking with "overflow when adding duration to instant".
#[tokio::test]
async fn the_longest_durations_do_not_overflow_the_clock() {
    let backend = FaultStore::new(MemoryStore::new());
    let faults = backend.handle();
    let layer = CacheLayer::new()
        .ttl(Duration::MAX)
        .time_to_idle(Duration::MAX)
        .stale_if_error(Duration::MAX)
        .negative_ttl(Duration::MAX)
        .load_timeout(Duration::MAX);
    let handle = layer.handle();
    let store = StoreBuilder::new(backend).layer(layer).try_build().unwrap();
    store.put("k", "v1").await.unwrap();
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "v1"
    );
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "v1"
    );
    assert_eq!(handle.stats().hits, 1);
    assert_eq!(
        store.get_value("missing").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    faults.fail_next(Operation::Store, 1, ErrorKind::Unavailable);
    store.put("k", "v2").await.unwrap_err();
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "v1"
    );
}

/// An observer that panics once, on the first load it hears of.
struct PanicsOnFirstLoad(std::sync::atomic::AtomicBool);

impl CacheObserver for PanicsOnFirstLoad {
    fn load(&self, _ok: bool) {
        if !self.0.swap(true, Ordering::SeqCst) {
            panic!("observer bug");
        }
    }
}

/// A load whose bookkeeping panics half-way (here: a user's observer) must not wedge its key:
/// its waiters are released (they start another load) and nothing stays in flight. Before,
/// the flight was marked settled before it was, and every `get` of the key waited for ever.
#[tokio::test(start_paused = true)]
async fn a_panic_while_finishing_a_load_does_not_wedge_its_key() {
    let backend = MemoryStore::new();
    backend.put("k", "v").await.unwrap();
    let layer = CacheLayer::new().observer(Arc::new(PanicsOnFirstLoad(Default::default())));
    let handle = layer.handle();
    let store = StoreBuilder::new(backend).layer(layer).try_build().unwrap();
    let got = tokio::time::timeout(Duration::from_secs(60), store.get_value("k"))
        .await
        .expect("the get of a key whose load panicked while finishing never ended");
    assert_eq!(got.unwrap().expose_str().unwrap(), "v");
    assert_eq!(handle.loads_in_flight(), 0);
    assert_eq!(
        store.get_value("k").await.unwrap().expose_str().unwrap(),
        "v"
    );
}
