//! The request budget: 10,000 simulated instances cold-starting with 20 secrets each never
//! call the backend more than the configured fleet budget allows, counted in-process below
//! the budget (in-memory backend).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Counting;
use kms_cache::CacheLayer;
use kms_core::{ErrorKind, KeyName, KeyStore, MemoryStore};
use kms_fleet::{Budgeted, RequestBudget};

const INSTANCES: usize = 10_000;
const SECRETS: usize = 20;

/// Cold-starts `INSTANCES` instances over `backend`, each with a cache over its own budget
/// (its share `fleet_rps / INSTANCES`, burst 1, first token at `i / INSTANCES` of a token's
/// time: evenly spread), each reading its `SECRETS` keys. Returns (values served,
/// rate-limited answers, elapsed).
async fn cold_start(
    backend: Arc<dyn KeyStore>,
    keys: &[KeyName],
    fleet_rps: f64,
) -> (u64, u64, Duration) {
    let served = Arc::new(AtomicU64::new(0));
    let limited = Arc::new(AtomicU64::new(0));
    let share = fleet_rps / INSTANCES as f64;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(INSTANCES);
    for i in 0..INSTANCES {
        let budget = RequestBudget::builder("cold", share)
            .burst(1.0)
            .initial_tokens(i as f64 / INSTANCES as f64)
            .max_wait(Duration::from_secs(2))
            .build()
            .unwrap();
        let cache = CacheLayer::new().wrap(Budgeted::new(backend.clone(), budget));
        let (keys, served, limited) = (keys.to_vec(), served.clone(), limited.clone());
        tasks.push(tokio::spawn(async move {
            // One key after the other, as a service loading its configuration does.
            for key in &keys {
                match cache.get(key).await {
                    Ok(_) => served.fetch_add(1, Ordering::Relaxed),
                    Err(err) => {
                        assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
                        limited.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    (
        served.load(Ordering::Relaxed),
        limited.load(Ordering::Relaxed),
        start.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_cold_starts_stay_within_the_budget() {
    let memory = MemoryStore::new();
    let keys: Vec<KeyName> = (0..SECRETS)
        .map(|i| KeyName::new(format!("fleet-cold/k{i}")).unwrap())
        .collect();
    for key in &keys {
        memory.store(key, "v".into()).await.unwrap();
    }
    let counting = Arc::new(Counting::new(memory));
    let calls = counting.calls.clone();
    let fleet_rps = 2_000.0;
    let (served, limited, elapsed) = cold_start(counting, &keys, fleet_rps).await;
    let calls = calls.load(Ordering::Relaxed);
    let allowed = fleet_rps * elapsed.as_secs_f64() + 2.0;
    assert!(
        (calls as f64) <= allowed,
        "{calls} backend calls in {elapsed:?}: the budget allows {allowed}"
    );
    assert_eq!(
        served, calls,
        "every call that reached the backend served a value"
    );
    assert_eq!(served + limited, (INSTANCES * SECRETS) as u64);
    assert!(served > 0);
}
