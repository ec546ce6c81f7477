//! Reports of credentials refused downstream (`CacheHandle::report_rejected`): negative
//! caching of unknown versions, one coalesced forced refresh per rate-limit period, retries
//! while the backend still answers the refused version (which is never cached meanwhile), and
//! lifetimes that end before a published rotation.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::join_all;
use kms_cache::{CacheLayer, CacheStats, Rejection, quanta};
use kms_core::fault::{FaultHandle, FaultStore};
use kms_core::{
    ErrorKind, KeyName, KeyPrefix, KeyStore, KeyStoreExt, MemoryStore, Operation, SecretMeta,
    SecretValue, StoreBuilder, StoredSecret,
};

fn key(s: &str) -> KeyName {
    KeyName::new(s).unwrap()
}

struct Rig {
    backend: Arc<MemoryStore>,
    faults: FaultHandle,
    store: Arc<dyn KeyStore>,
    handle: kms_cache::CacheHandle,
}

/// `db/password` = "v1" in a memory backend (written to directly to rotate below the cache),
/// counted by a FaultStore, under `layer`.
async fn rig(layer: CacheLayer) -> Rig {
    let backend = Arc::new(MemoryStore::new());
    backend.put("db/password", "v1").await.unwrap();
    let counted = FaultStore::new(backend.clone());
    let faults = counted.handle();
    let handle = layer.handle();
    let store = StoreBuilder::new(counted).layer(layer).build();
    Rig {
        backend,
        faults,
        store,
        handle,
    }
}

impl Rig {
    async fn read(&self) -> StoredSecret {
        self.store.get(&key("db/password")).await.unwrap()
    }

    async fn version(&self) -> String {
        self.read().await.meta.version.unwrap().to_string()
    }

    fn reads(&self) -> u64 {
        self.faults.calls(Operation::Get)
    }

    fn stats(&self) -> CacheStats {
        self.handle.stats()
    }
}

#[tokio::test]
async fn a_thousand_reports_of_a_version_never_served_cost_no_read() {
    let rig = rig(CacheLayer::new()).await;
    let served = rig.version().await;
    let before = rig.reads();
    let k = key("db/password");
    let reports = join_all((0..1000).map(|i| {
        let handle = rig.handle.clone();
        let k = k.clone();
        async move { handle.report_rejected(&k, &format!("bogus-{i}")).await }
    }))
    .await;
    assert!(reports.iter().all(|r| *r == Rejection::IgnoredUnknown));
    // Unknown keys too, and keys the cache holds nothing for.
    assert_eq!(
        rig.handle.report_rejected(&key("other"), "1").await,
        Rejection::IgnoredUnknown
    );
    assert_eq!(rig.reads(), before, "no backend read for unknown versions");
    assert_eq!(rig.version().await, served, "still served, as a hit");
    assert_eq!(rig.reads(), before);
    assert_eq!(rig.stats().rejection_reports, 1001);
    assert_eq!(rig.stats().forced_refreshes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_reports_of_the_current_version_make_one_read_per_rate_limit_period() {
    let (clock, time) = quanta::Clock::mock();
    let limit = Duration::from_secs(30);
    let rig = rig(CacheLayer::new().clock(clock).rejection_rate_limit(limit)).await;
    let k = key("db/password");
    for period in 0..3 {
        let refused = rig.version().await;
        // The rotation below the cache: the backend answers a new version.
        rig.backend
            .put("db/password", format!("v{}", period + 2))
            .await
            .unwrap();
        let before = rig.reads();
        // 100 tasks, 10 reports each, of the version they were served.
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let handle = rig.handle.clone();
                let (k, refused) = (k.clone(), refused.clone());
                tokio::spawn(async move {
                    let mut outcomes = Vec::new();
                    for _ in 0..10 {
                        outcomes.push(handle.report_rejected(&k, &refused).await);
                    }
                    outcomes
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.extend(t.await.unwrap());
        }
        assert_eq!(outcomes.len(), 1000);
        assert!(outcomes.contains(&Rejection::Refreshed), "{outcomes:?}");
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Rejection::Refreshed | Rejection::IgnoredUnknown)),
            "{outcomes:?}"
        );
        assert_eq!(rig.reads() - before, 1, "one read in period {period}");
        let fresh = rig.version().await;
        assert_ne!(fresh, refused);
        assert_eq!(rig.reads() - before, 1, "the new version is cached");

        // Within the period, reports of the new version change nothing and read nothing,
        // even though the backend has moved again.
        rig.backend.put("db/password", "interim").await.unwrap();
        rig.backend
            .put("db/password", format!("v{}", period + 2))
            .await
            .unwrap();
        time.increment(limit - Duration::from_secs(1));
        for _ in 0..100 {
            assert_eq!(
                rig.handle.report_rejected(&k, &fresh).await,
                Rejection::RateLimited
            );
        }
        assert_eq!(rig.reads() - before, 1);
        assert_eq!(rig.version().await, fresh, "still served");
        time.increment(Duration::from_secs(1));
    }
    assert_eq!(rig.stats().forced_refreshes, 3);
    assert_eq!(rig.stats().rejection_reports, 3 * 1100);
}

#[tokio::test(start_paused = true)]
async fn while_the_backend_still_answers_the_refused_version_it_is_never_cached() {
    let rig = rig(CacheLayer::new()).await;
    let k = key("db/password");
    let refused = rig.version().await;
    let report = tokio::spawn({
        let (handle, k, refused) = (rig.handle.clone(), k.clone(), refused.clone());
        async move { handle.report_rejected(&k, &refused).await }
    });
    // Readers during the window: every read is answered by the backend (the refused
    // version, uncached), none from the cache.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            rig.store.get_now(&k).is_none(),
            "the refused version is never held as fresh"
        );
        assert_eq!(rig.version().await, refused, "the backend's answer");
    }
    // The rotation finishes: the backend answers a new version.
    rig.backend.put("db/password", "v2").await.unwrap();
    assert_eq!(report.await.unwrap(), Rejection::Refreshed);
    let before = rig.reads();
    let fresh = rig.version().await;
    assert_ne!(fresh, refused);
    assert_eq!(rig.version().await, fresh);
    assert!(rig.reads() <= before + 1, "cached again");
}

#[tokio::test(start_paused = true)]
async fn a_refresh_gives_up_after_its_budget_and_the_version_may_be_cached_again() {
    let rig = rig(CacheLayer::new().rejection_retry_budget(Duration::from_secs(90))).await;
    let k = key("db/password");
    let refused = rig.version().await;
    let before = rig.reads();
    let started = tokio::time::Instant::now();
    assert_eq!(
        rig.handle.report_rejected(&k, &refused).await,
        Rejection::StillRejected
    );
    let took = started.elapsed();
    assert!(took <= Duration::from_secs(90), "{took:?}");
    assert!(
        took >= Duration::from_secs(30),
        "retried across the budget: {took:?}"
    );
    let reads = rig.reads() - before;
    // 1 s doubling to 10 s, each up to half shorter: 21 reads at most in 90 s.
    assert!((3..=21).contains(&reads), "{reads} reads with back-off");
    // The backend insists: the version is cached again, and hits.
    rig.read().await;
    let before = rig.reads();
    rig.read().await;
    assert_eq!(rig.reads(), before);

    // A zero budget: one read.
    let rig = rig_with_budget(Duration::ZERO).await;
    let refused = rig.version().await;
    let before = rig.reads();
    assert_eq!(
        rig.handle.report_rejected(&k, &refused).await,
        Rejection::StillRejected
    );
    assert_eq!(rig.reads() - before, 1);
}

async fn rig_with_budget(budget: Duration) -> Rig {
    rig(CacheLayer::new().rejection_retry_budget(budget)).await
}

#[tokio::test(start_paused = true)]
async fn a_failing_reload_is_retried_within_the_budget_and_reported() {
    let rig = rig(CacheLayer::new().rejection_retry_budget(Duration::from_secs(20))).await;
    let k = key("db/password");
    let refused = rig.version().await;
    rig.faults
        .fail_always(Operation::Get, ErrorKind::Unavailable);
    let before = rig.reads();
    assert_eq!(
        rig.handle.report_rejected(&k, &refused).await,
        Rejection::Failed(ErrorKind::Unavailable)
    );
    assert!(rig.reads() - before >= 2, "a transient failure is retried");
    rig.faults.clear();
    assert_eq!(rig.version().await, refused, "loaded again as any miss");
    // The last refresh ended just now: rate limited.
    assert_eq!(
        rig.handle.report_rejected(&k, &refused).await,
        Rejection::RateLimited
    );

    // A permanent failure ends the refresh at once.
    let rig = rig_with_budget(Duration::from_secs(20)).await;
    let refused = rig.version().await;
    rig.backend.remove(&k).await.unwrap();
    let before = rig.reads();
    assert_eq!(
        rig.handle.report_rejected(&k, &refused).await,
        Rejection::Failed(ErrorKind::NotFound)
    );
    assert_eq!(rig.reads() - before, 1);
}

#[tokio::test]
async fn reports_of_the_version_being_refreshed_join_it() {
    let rig = rig(CacheLayer::new()).await;
    let k = key("db/password");
    let refused = rig.version().await;
    rig.faults
        .set_latency(Operation::Get, Duration::from_millis(200));
    rig.backend.put("db/password", "v2").await.unwrap();
    let before = rig.reads();
    let outcomes = join_all((0..50).map(|_| rig.handle.report_rejected(&k, &refused))).await;
    assert!(
        outcomes.iter().all(|o| *o == Rejection::Refreshed),
        "{outcomes:?}"
    );
    assert_eq!(rig.reads() - before, 1);
    assert_eq!(rig.stats().forced_refreshes, 1);
}

#[tokio::test]
async fn a_report_dropped_after_its_first_poll_still_refreshes() {
    let rig = rig(CacheLayer::new()).await;
    let k = key("db/password");
    let refused = rig.version().await;
    rig.faults
        .set_latency(Operation::Get, Duration::from_millis(50));
    rig.backend.put("db/password", "v2").await.unwrap();
    {
        let report = rig.handle.report_rejected(&k, &refused);
        let mut report = std::pin::pin!(report);
        assert!(futures::poll!(report.as_mut()).is_pending());
    }
    // The refresh runs detached: later reports of the old version join it or find it done.
    let outcome = rig.handle.report_rejected(&k, &refused).await;
    assert!(
        matches!(outcome, Rejection::Refreshed | Rejection::IgnoredUnknown),
        "{outcome:?}"
    );
    assert_ne!(rig.version().await, refused);
    assert_eq!(rig.stats().forced_refreshes, 1);
}

#[test]
fn bad_rejection_settings_are_configuration_errors_naming_them() {
    let err = CacheLayer::new()
        .rejection_rate_limit(Duration::ZERO)
        .validate()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(err.to_string().contains("rejection_rate_limit"), "{err}");
    let err = CacheLayer::new()
        .rejection_retry_budget(Duration::from_secs(16 * 60))
        .validate()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(err.to_string().contains("rejection_retry_budget"), "{err}");
    CacheLayer::new()
        .rejection_retry_budget(Duration::ZERO)
        .validate()
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Schedule-aware lifetime

/// A backend that publishes the same next rotation with each read.
#[derive(Debug)]
struct Scheduled {
    inner: MemoryStore,
    next: std::sync::Mutex<Option<SystemTime>>,
}

impl std::fmt::Display for Scheduled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scheduled")
    }
}

#[kms_core::async_trait]
impl KeyStore for Scheduled {
    fn backend(&self) -> &'static str {
        "memory"
    }
    fn capabilities(&self) -> kms_core::Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &KeyName) -> kms_core::Result<StoredSecret> {
        let mut secret = self.inner.get(key).await?;
        if let Some(at) = *self.next.lock().unwrap() {
            secret.meta = secret.meta.next_rotation(at);
        }
        Ok(secret)
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> kms_core::Result<SecretMeta> {
        self.inner.store(key, value).await
    }
    async fn remove(&self, key: &KeyName) -> kms_core::Result<()> {
        self.inner.remove(key).await
    }
    async fn list(&self, prefix: &KeyPrefix) -> kms_core::Result<Vec<KeyName>> {
        self.inner.list(prefix).await
    }
    async fn health(&self) -> kms_core::Result<()> {
        Ok(())
    }
}

/// Builds a cache with `jitter` over a backend whose next rotation is `next` (relative to
/// the wall clock now); returns the store, the mocked cache clock and the read counter.
async fn scheduled(
    jitter: f64,
    next: Option<Duration>,
    past: bool,
) -> (Arc<dyn KeyStore>, Arc<quanta::Mock>, FaultHandle) {
    let inner = MemoryStore::new();
    inner.put("k", "v").await.unwrap();
    let at = next.map(|d| {
        if past {
            SystemTime::now() - d
        } else {
            SystemTime::now() + d
        }
    });
    let backend = FaultStore::new(Scheduled {
        inner,
        next: std::sync::Mutex::new(at),
    });
    let faults = backend.handle();
    let (clock, time) = quanta::Clock::mock();
    let layer = CacheLayer::new()
        .ttl(Duration::from_secs(300))
        .jitter(jitter)
        .clock(clock);
    (
        StoreBuilder::new(backend).layer(layer).build(),
        time,
        faults,
    )
}

/// Whether a read of `k` now is a hit.
async fn hit(store: &Arc<dyn KeyStore>, faults: &FaultHandle) -> bool {
    let before = faults.calls(Operation::Get);
    store.get(&key("k")).await.unwrap();
    faults.calls(Operation::Get) == before
}

#[tokio::test]
async fn an_entry_never_outlives_the_published_rotation() {
    // Rotation in 100 s, TTL 300 s, no jitter: fresh until the rotation, not a moment past.
    let (store, time, faults) = scheduled(0.0, Some(Duration::from_secs(100)), false).await;
    assert!(!hit(&store, &faults).await);
    time.increment(Duration::from_secs(98));
    assert!(hit(&store, &faults).await, "fresh before the rotation");
    time.increment(Duration::from_secs(2));
    assert!(
        !hit(&store, &faults).await,
        "expired at the rotation, not at the TTL"
    );

    // With jitter 0.1 the entry expires within the 30 s (10 % of the TTL) before it.
    for _ in 0..20 {
        let (store, time, faults) = scheduled(0.1, Some(Duration::from_secs(100)), false).await;
        assert!(!hit(&store, &faults).await);
        time.increment(Duration::from_secs(69));
        assert!(hit(&store, &faults).await, "not before the jitter window");
        time.increment(Duration::from_secs(31));
        assert!(!hit(&store, &faults).await, "never past the rotation");
    }
}

#[tokio::test]
async fn the_jitter_spreads_expiry_over_the_window_before_the_rotation() {
    let mut expired_at_80 = 0;
    for _ in 0..40 {
        let (store, time, faults) = scheduled(0.1, Some(Duration::from_secs(100)), false).await;
        assert!(!hit(&store, &faults).await);
        time.increment(Duration::from_secs(85));
        if !hit(&store, &faults).await {
            expired_at_80 += 1;
        }
    }
    // Each entry expires uniformly in (70 s, 100 s]: half of them by 85 s.
    assert!(
        (5..=35).contains(&expired_at_80),
        "{expired_at_80} of 40 expired by 85 s"
    );
}

#[tokio::test]
async fn a_rotation_after_the_ttl_or_already_past_leaves_the_ttl() {
    for (next, past) in [
        (Duration::from_secs(3600), false),
        (Duration::from_secs(60), true),
    ] {
        let (store, time, faults) = scheduled(0.0, Some(next), past).await;
        assert!(!hit(&store, &faults).await);
        time.increment(Duration::from_secs(299));
        assert!(hit(&store, &faults).await, "{next:?} past={past}");
        time.increment(Duration::from_secs(1));
        assert!(!hit(&store, &faults).await, "{next:?} past={past}");
    }
}
