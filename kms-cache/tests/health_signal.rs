//! The cache reading a `HealthSignal`: while it says the backend is down, a read of an
//! expired key with a stale value is answered at once (no stale-while-revalidate wait), the
//! reload still runs in the background (one per key), and everything else is as without the
//! signal. Tokio's paused clock (exact elapsed times) and a mocked cache clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use kms_cache::quanta::{Clock, Mock};
use kms_cache::{CacheLayer, CacheObserver};
use kms_core::fault::{FaultHandle, FaultStore};
use kms_core::{
    ErrorKind, HealthSignal, KeyStore, KeyStoreExt, MemoryStore, Operation, StoreBuilder,
};
use tokio::time::Instant;

const TTL: Duration = Duration::from_secs(60);
const LOAD_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Staleness {
    serves: AtomicU64,
    seen: Mutex<Vec<Duration>>,
}

impl CacheObserver for Staleness {
    fn served_stale(&self, expired_for: Duration) {
        self.serves.fetch_add(1, Ordering::Relaxed);
        self.seen.lock().unwrap().push(expired_for);
    }
}

struct Stack {
    store: Arc<dyn KeyStore>,
    backend: Arc<MemoryStore>,
    faults: FaultHandle,
    signal: HealthSignal,
    time: Arc<Mock>,
    observer: Arc<Staleness>,
}

/// A cache (TTL 60 s, stale-if-error 15 min, stale wait 100 ms, load timeout 5 s) reading a
/// signal, over a fault store, with `keys` cached and then expired by `expired_for`.
async fn stack(keys: &[&str], expired_for: Duration) -> Stack {
    let (clock, time) = Clock::mock();
    let backend = Arc::new(MemoryStore::new());
    let faulty = FaultStore::new(backend.clone());
    let faults = faulty.handle();
    let signal = HealthSignal::new();
    let observer = Arc::new(Staleness::default());
    let store = StoreBuilder::new(faulty)
        .layer(
            CacheLayer::new()
                .ttl(TTL)
                .jitter(0.0)
                .stale_if_error(Duration::from_secs(900))
                .load_timeout(LOAD_TIMEOUT)
                .health_signal(signal.clone())
                .observer(observer.clone())
                .clock(clock),
        )
        .try_build()
        .unwrap();
    for k in keys {
        store.put(k, format!("{k}@1").as_str()).await.unwrap();
        store.get_value(k).await.unwrap();
    }
    time.increment(TTL + expired_for);
    Stack {
        store,
        backend,
        faults,
        signal,
        time,
        observer,
    }
}

async fn timed_read(store: &Arc<dyn KeyStore>, key: &str) -> (Duration, Result<String, ErrorKind>) {
    let t = Instant::now();
    let got = store
        .get_value(key)
        .await
        .map(|v| v.expose_str().unwrap().to_owned())
        .map_err(|e| e.kind());
    (t.elapsed(), got)
}

/// A hung backend known to be down: every stale read is answered at once; without the
/// signal (or with it up) the same read waits the 100 ms stale wait. One reload per key
/// runs meanwhile, bounded by the load timeout.
#[tokio::test(start_paused = true)]
async fn while_the_signal_says_down_stale_reads_do_not_wait() {
    let s = stack(&["app/a", "app/b"], Duration::from_secs(1)).await;
    s.faults.hang(Operation::Get);

    // Up (or unknown): the stale-while-revalidate wait.
    s.signal.mark_up();
    let (elapsed, got) = timed_read(&s.store, "app/a").await;
    assert_eq!(got, Ok("app/a@1".into()));
    assert_eq!(elapsed, Duration::from_millis(100));

    // Down: at once, however many readers.
    s.signal.mark_down();
    let calls = s.faults.calls(Operation::Get);
    for _ in 0..20 {
        let reads = join_all((0..8).map(|_| timed_read(&s.store, "app/b"))).await;
        for (elapsed, got) in reads {
            assert_eq!(got, Ok("app/b@1".into()));
            assert_eq!(elapsed, Duration::ZERO);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // One background reload of `app/b` in flight, then another after the load timeout: not
    // one per read.
    let reloads = s.faults.calls(Operation::Get) - calls;
    assert!(
        (1..=2).contains(&reloads),
        "{reloads} reloads for 160 reads"
    );
    assert_eq!(s.observer.serves.load(Ordering::Relaxed), 161);
}

/// While down, a key with nothing to serve stale waits for its load as always (and gets its
/// error), and a key the backend has since changed is refreshed in the background: the
/// first read is answered stale at once, the next one fresh.
#[tokio::test(start_paused = true)]
async fn while_down_cold_keys_wait_and_reloads_still_refresh() {
    let s = stack(&["app/a"], Duration::from_secs(1)).await;
    s.signal.mark_down();
    s.faults
        .fail_next(Operation::Get, 1, ErrorKind::Unavailable);
    s.faults
        .set_latency(Operation::Get, Duration::from_millis(30));
    let (elapsed, got) = timed_read(&s.store, "app/cold").await;
    assert_eq!(got, Err(ErrorKind::Unavailable));
    assert_eq!(elapsed, Duration::from_millis(30));

    // The backend answers again (the signal has not caught up yet) with a new value.
    s.backend.put("app/a", "app/a@2").await.unwrap();
    let (elapsed, got) = timed_read(&s.store, "app/a").await;
    assert_eq!((elapsed, got), (Duration::ZERO, Ok("app/a@1".into())));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (elapsed, got) = timed_read(&s.store, "app/a").await;
    assert_eq!((elapsed, got), (Duration::ZERO, Ok("app/a@2".into())));
}

/// Fresh entries are hits whatever the signal says, and an expired entry with a backend that
/// answers is reloaded (not served stale) once the signal is up again.
#[tokio::test(start_paused = true)]
async fn the_signal_changes_nothing_for_hits_or_a_backend_that_is_up() {
    let s = stack(&["app/a"], Duration::ZERO).await;
    s.time.increment(Duration::from_secs(1));
    s.signal.mark_down();
    s.store.put("app/fresh", "v").await.unwrap();
    s.store.get_value("app/fresh").await.unwrap();
    let calls = s.faults.calls(Operation::Get);
    for _ in 0..10 {
        let (elapsed, got) = timed_read(&s.store, "app/fresh").await;
        assert_eq!((elapsed, got), (Duration::ZERO, Ok("v".into())));
    }
    assert_eq!(s.faults.calls(Operation::Get), calls);
    s.signal.mark_up();
    s.backend.put("app/a", "app/a@2").await.unwrap();
    let (_, got) = timed_read(&s.store, "app/a").await;
    assert_eq!(got, Ok("app/a@2".into()));
    assert_eq!(s.observer.serves.load(Ordering::Relaxed), 0);
}

/// The observer is told how long each stale value served had been expired.
#[tokio::test(start_paused = true)]
async fn stale_serves_report_their_staleness() {
    let s = stack(&["app/a"], Duration::from_secs(30)).await;
    s.faults.fail_always(Operation::Get, ErrorKind::Unavailable);
    s.store.get_value("app/a").await.unwrap();
    s.time.increment(Duration::from_secs(90));
    s.signal.mark_down();
    s.store.get_value("app/a").await.unwrap();
    assert_eq!(
        *s.observer.seen.lock().unwrap(),
        [Duration::from_secs(30), Duration::from_secs(120)]
    );
}
