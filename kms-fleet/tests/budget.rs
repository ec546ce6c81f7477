//! The request budget: 10,000 simulated instances cold-starting with 20 secrets each never
//! call the backend more than the configured fleet budget allows, counted in-process below
//! the budget and, against moto, by moto itself.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Counting;
use futures::future::join_all;
use kms_cache::CacheLayer;
use kms_core::{ErrorKind, KeyName, KeyStore, MemoryStore};
use kms_fleet::{Budgeted, RequestBudget};

const INSTANCES: usize = 10_000;
const SECRETS: usize = 20;

/// Cold-starts `INSTANCES` instances over `backend`, each with a cache over its own budget
/// (its share `fleet_rps / INSTANCES`, burst 1, first token at `i / INSTANCES` of a token's
/// time: evenly spread), each reading `SECRETS` keys at once. Returns (values served,
/// rate-limited answers, elapsed).
async fn cold_start(backend: Arc<dyn KeyStore>, keys: &[KeyName], fleet_rps: f64) -> (u64, u64, Duration) {
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
            let reads = keys.iter().map(|key| cache.get(key));
            for result in join_all(reads).await {
                match result {
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
    (served.load(Ordering::Relaxed), limited.load(Ordering::Relaxed), start.elapsed())
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
    assert_eq!(served, calls, "every call that reached the backend served a value");
    assert_eq!(served + limited, (INSTANCES * SECRETS) as u64);
    assert!(served > 0);
}

/// A private moto (scripts/peers/moto_server.py) on 4250, so its request log counts this
/// test's requests only. Killed when dropped.
struct Moto {
    child: std::process::Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Moto {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("moto.log");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/peers/moto_server.py");
        let python = std::env::var("KMS_TOOLS")
            .map(|t| format!("{t}/venv/bin/python"))
            .ok()
            .filter(|p| Path::new(p).exists())
            .unwrap_or_else(|| "python3".to_owned());
        let child = Command::new(python)
            .arg(script)
            .args(["127.0.0.1", "4250"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start moto (source /tmp/peers.env or run scripts/test: moto is in the venv)");
        Self {
            child,
            log,
            _dir: dir,
        }
    }

    /// Secrets Manager requests moto has answered (its request log: one line each).
    fn requests(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"POST / HTTP"))
            .count()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_cold_starts_against_moto_stay_within_the_budget() {
    use kms_backend_aws::{AwsConnection, SecretsManagerStore};
    let moto = Moto::start();
    let url = "http://127.0.0.1:4250";
    let up = common::eventually(Duration::from_secs(60), || {
        std::net::TcpStream::connect("127.0.0.1:4250").is_ok()
    })
    .await;
    assert!(up, "moto did not start");
    let config = AwsConnection::new()
        .region("us-east-1")
        .endpoint_url(url)
        .static_credentials("testing", "testing".to_owned(), None)
        .load()
        .await
        .unwrap();
    let store: Arc<dyn KeyStore> = Arc::new(SecretsManagerStore::builder(&config).build().unwrap());
    let keys: Vec<KeyName> = (0..SECRETS)
        .map(|i| KeyName::new(format!("fleet-cold/k{i}")).unwrap())
        .collect();
    for key in &keys {
        store.store(key, "v".into()).await.unwrap();
    }
    let counting = Arc::new(Counting::new(store));
    let calls = counting.calls.clone();
    let before = moto.requests();
    let fleet_rps = 100.0;
    let (served, limited, elapsed) = cold_start(counting, &keys, fleet_rps).await;
    // moto writes its log line when it has answered: give the last one a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at_moto = moto.requests() - before;
    let calls = calls.load(Ordering::Relaxed);
    let allowed = fleet_rps * elapsed.as_secs_f64() + 2.0;
    assert_eq!(at_moto as u64, calls, "moto saw what the counting store let through");
    assert!(
        (at_moto as f64) <= allowed,
        "moto received {at_moto} requests in {elapsed:?}: the budget allows {allowed}"
    );
    assert_eq!(served + limited, (INSTANCES * SECRETS) as u64);
    assert!(served > 0);
}
