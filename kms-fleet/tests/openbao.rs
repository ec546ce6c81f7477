//! Against the OpenBao dev server (scripts/peers/openbao.sh) and NATS: 100 caches in two
//! processes follow writes made through the library, and changes made with `bao kv put`
//! reach them through one watcher with one version check per key per interval in total.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Counting, TestFleet, eventually, link, nats_url, unique};
use kms_backend_vault::{VaultAuth, VaultClient, VaultStore};
use kms_core::{KeyName, KeyStore, Layer};
use kms_fleet::{PublishLayer, Publisher, Watched, Watcher};

async fn vault() -> Arc<dyn KeyStore> {
    let addr = std::env::var("KMS_TEST_VAULT_ADDR")
        .expect("KMS_TEST_VAULT_ADDR is not set: source /tmp/peers.env or run scripts/test");
    let token = std::env::var("KMS_TEST_VAULT_TOKEN").expect("KMS_TEST_VAULT_TOKEN");
    let client = VaultClient::builder(addr)
        .auth(VaultAuth::token(token))
        .build()
        .await
        .expect("OpenBao client");
    Arc::new(VaultStore::builder(client).field("v").build().unwrap())
}

/// The other process of the fleet: when `KMS_FLEET_CHILD_STORE` is set (by the test below,
/// which runs this test binary again with only this test selected), runs 10 caches over
/// OpenBao following the store, prints `min <version>` each time the lowest version its
/// caches serve rises, `REGRESSION` if one goes back, and stops when its stdin closes.
/// Without the variable it does nothing (and passes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_fleet_process() {
    let Ok(store_id) = std::env::var("KMS_FLEET_CHILD_STORE") else {
        return;
    };
    let key = KeyName::new(std::env::var("KMS_FLEET_CHILD_KEY").unwrap()).unwrap();
    let url = nats_url();
    let links = vec![link(&url).await, link(&url).await];
    let fleet = TestFleet::start(
        10,
        vault().await,
        &store_id,
        &links,
        &key,
        Duration::from_secs(600),
        Duration::from_millis(2),
    )
    .await;
    let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let closed = closed.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
                line.clear();
            }
            closed.store(true, Ordering::Release);
        });
    }
    let mut reported = u64::MAX;
    let mut ready = false;
    let deadline = Instant::now() + Duration::from_secs(300);
    while !closed.load(Ordering::Acquire) && Instant::now() < deadline {
        if !ready && fleet.all_following() {
            ready = true;
            println!("child: ready");
        }
        let min = fleet.min_seen();
        if ready && min != reported {
            reported = min;
            println!("child: min {min}");
        }
        if fleet.regressions.load(Ordering::Relaxed) > 0 {
            println!("child: REGRESSION");
        }
        if fleet.errors.load(Ordering::Relaxed) > 0 {
            println!("child: ERROR");
        }
        std::io::stdout().flush().unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_caches_in_two_processes_follow_every_rotation() {
    let url = nats_url();
    let store_id = unique("bao");
    let key = KeyName::new(format!("{}/db", unique("fleet-"))).unwrap();
    let backend = vault().await;
    let writer_link = link(&url).await;
    let publisher = Publisher::builder(&writer_link, &store_id).build().unwrap();
    let writer = PublishLayer::new(publisher).layer(backend.clone());
    let first: u64 = writer
        .store(&key, "r0".into())
        .await
        .unwrap()
        .version
        .unwrap()
        .parse()
        .unwrap();

    // The other process: 10 caches.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_fleet_process",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("KMS_FLEET_CHILD_STORE", &store_id)
        .env("KMS_FLEET_CHILD_KEY", key.as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let child_min = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let child_bad = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let child_ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (child_min, child_bad, child_ready) =
            (child_min.clone(), child_bad.clone(), child_ready.clone());
        tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                // libtest may print its own words on the same line first.
                if line.ends_with("child: ready") {
                    child_ready.store(true, Ordering::Release);
                } else if let Some((_, v)) = line.split_once("child: min ") {
                    child_min.store(v.parse().unwrap(), Ordering::Release);
                } else if line.ends_with("child: REGRESSION") || line.ends_with("child: ERROR") {
                    child_bad.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }

    // This process: 90 caches over 9 links.
    let mut links = Vec::new();
    for _ in 0..9 {
        links.push(link(&url).await);
    }
    let fleet = TestFleet::start(
        90,
        backend.clone(),
        &store_id,
        &links,
        &key,
        Duration::from_secs(600),
        Duration::from_millis(2),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(60), || {
            fleet.all_following()
                && fleet.min_seen() == first
                && child_ready.load(Ordering::Acquire)
                && child_min.load(Ordering::Acquire) == first
        })
        .await,
        "the fleet did not start: here {} (following {}), child {} (ready {}), first {first}",
        fleet.min_seen(),
        fleet.all_following(),
        child_min.load(Ordering::Acquire),
        child_ready.load(Ordering::Acquire)
    );
    for round in 1..=15u64 {
        let version: u64 = writer
            .store(&key, format!("r{round}").into())
            .await
            .unwrap()
            .version
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(version, first + round);
        assert!(
            eventually(Duration::from_secs(10), || {
                fleet.min_seen() == version && child_min.load(Ordering::Acquire) == version
            })
            .await,
            "round {round}: here {}, child {}",
            fleet.min_seen(),
            child_min.load(Ordering::Acquire)
        );
    }
    drop(child.stdin.take());
    let _ = child.wait();
    assert_eq!(fleet.regressions.load(Ordering::Relaxed), 0);
    assert_eq!(fleet.errors.load(Ordering::Relaxed), 0);
    assert_eq!(
        child_bad.load(Ordering::Relaxed),
        0,
        "the child saw a regression or error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bao_kv_put_reaches_every_cache_through_one_watcher() {
    let url = nats_url();
    let store_id = unique("watch");
    let dir = unique("fleet-w");
    let keys: Vec<KeyName> = (0..5)
        .map(|i| KeyName::new(format!("{dir}/k{i}")).unwrap())
        .collect();
    let backend = vault().await;
    for key in &keys {
        backend.store(key, "w0".into()).await.unwrap();
    }
    // Three watchers for availability, each on its own link and counting its own checks.
    let interval = Duration::from_millis(500);
    let mut watchers = Vec::new();
    let mut counters = Vec::new();
    let mut watcher_links = Vec::new();
    for _ in 0..3 {
        let wlink = link(&url).await;
        let counting = Arc::new(Counting::new(vault().await));
        counters.push(counting.gets.clone());
        let publisher = Publisher::builder(&wlink, &store_id).build().unwrap();
        watchers.push(
            Watcher::builder(publisher, counting, Watched::Keys(keys.clone()))
                .interval(interval)
                .spawn()
                .unwrap(),
        );
        watcher_links.push(wlink);
    }
    let mut links = Vec::new();
    for _ in 0..10 {
        links.push(link(&url).await);
    }
    let fleet = TestFleet::start(
        100,
        backend.clone(),
        &store_id,
        &links,
        &keys[0],
        Duration::from_secs(600),
        Duration::from_millis(2),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(30), || fleet.all_following()
            && fleet.min_seen() == 1)
        .await
    );
    assert!(
        eventually(Duration::from_secs(10), || watchers
            .iter()
            .any(|w| w.is_leader()))
        .await
    );

    let start = Instant::now();
    let checks_before: u64 = counters.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    for round in 2..=4u64 {
        // The operator's change, outside the library.
        let status = Command::new("bao")
            .args([
                "kv",
                "put",
                &format!("secret/{}", keys[0].as_str()),
                &format!("v=w{round}"),
            ])
            .stdout(Stdio::null())
            .status()
            .expect("`bao` on PATH (source /tmp/peers.env or run scripts/test)");
        assert!(status.success());
        assert!(
            eventually(Duration::from_secs(10), || fleet.min_seen() == round).await,
            "round {round}: lowest version served {}",
            fleet.min_seen()
        );
    }
    let elapsed = start.elapsed();
    let checks: u64 = counters
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum::<u64>()
        - checks_before;
    let intervals = elapsed.as_millis() as u64 / interval.as_millis() as u64 + 2;
    assert!(
        checks <= keys.len() as u64 * intervals,
        "{checks} version checks of {} keys in {elapsed:?} ({intervals} intervals at most)",
        keys.len()
    );
    let leaders = watchers.iter().filter(|w| w.is_leader()).count();
    assert_eq!(leaders, 1, "one watcher polls");
    let per_link: u64 = watcher_links
        .iter()
        .map(|l| l.metrics().version_check_count(&store_id))
        .sum();
    assert!(per_link >= checks);
    assert_eq!(fleet.regressions.load(Ordering::Relaxed), 0);
    assert_eq!(fleet.errors.load(Ordering::Relaxed), 0);
}
