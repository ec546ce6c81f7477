//! Faults: a three-node JetStream cluster started and killed (`kill -9`) by the test, and a
//! server restarted without its store (a gap). No invalidation is lost and no caller sees an
//! error while a cached value exists.
//!
//! Ports: clients 4230-4232 and 4240, routes 6230-6232 (this crate's range).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{Cluster, TestFleet, eventually, link, unique};
use kms_core::{KeyName, KeyStore, Layer, MemoryStore};
use kms_fleet::{FleetLink, FleetMetrics, PublishLayer, PublishOutcome, Publisher, StreamSettings};

async fn cluster_link(url: &str) -> FleetLink {
    FleetLink::builder(url)
        .origin(unique("c"))
        .stream_settings(StreamSettings {
            replicas: 3,
            ..StreamSettings::default()
        })
        .metrics(FleetMetrics::new())
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_one_node_then_all_mid_run_and_restart() {
    let mut cluster = Cluster::start(4230);
    assert!(
        cluster.wait_ready(Duration::from_secs(30)).await,
        "cluster did not form: {}",
        cluster.log(0)
    );
    let url = cluster.url();
    let store_id = unique("kill");
    let backend: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let writer_link = cluster_link(&url).await;
    let publisher = Publisher::builder(&writer_link, &store_id)
        .timeout(Duration::from_millis(250))
        .build()
        .unwrap();
    let writer = PublishLayer::new(publisher.clone()).layer(backend.clone());
    let key = KeyName::new("fleet-kill/k").unwrap();
    // The first write makes the stream (three replicas) and waits for the cluster to take it.
    let mut made = false;
    for _ in 0..100 {
        if writer_link.stream(&store_id).await.is_ok() {
            made = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(made, "stream not made");
    writer.store(&key, "v".into()).await.unwrap();

    let mut links = Vec::new();
    for _ in 0..5 {
        links.push(cluster_link(&url).await);
    }
    let fleet = TestFleet::start(
        50,
        backend.clone(),
        &store_id,
        &links,
        &key,
        Duration::from_secs(600),
        Duration::from_millis(5),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(30), || fleet.all_following()
            && fleet.min_seen() == 1)
        .await
    );

    // The writer rotates the key every 50 ms for the whole run.
    let stop = Arc::new(AtomicBool::new(false));
    let last = Arc::new(AtomicU64::new(1));
    let rotate = {
        let (stop, last, writer, key) = (stop.clone(), last.clone(), writer.clone(), key.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                let meta = writer.store(&key, "v".into()).await.unwrap();
                last.store(meta.version.unwrap().parse().unwrap(), Ordering::Release);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.kill(0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.kill(1);
    cluster.kill(2);
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in 0..3 {
        cluster.restart(i);
    }
    assert!(cluster.wait_ready(Duration::from_secs(60)).await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Release);
    rotate.await.unwrap();
    let target = last.load(Ordering::Acquire);
    assert!(
        eventually(Duration::from_secs(60), || fleet.min_seen() == target).await,
        "lowest version served {} of {target}; outbox {}",
        fleet.min_seen(),
        publisher.outbox_len()
    );
    assert_eq!(fleet.regressions.load(Ordering::Relaxed), 0);
    assert_eq!(
        fleet.errors.load(Ordering::Relaxed),
        0,
        "no caller error while a value was cached"
    );
    // The outage was real: writes made while every node was down went through the outbox.
    assert!(
        writer_link
            .metrics()
            .published_count(&store_id, PublishOutcome::Queued)
            > 0
    );
    assert_eq!(publisher.outbox_len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_lost_while_away_is_a_gap_and_every_key_is_revalidated() {
    let dir = tempfile::tempdir().unwrap();
    let start = |store: &str| {
        std::process::Command::new(common::nats_server())
            .args(["-a", "127.0.0.1", "-p", "4240", "-js", "-sd"])
            .arg(dir.path().join(store))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut server = start("first");
    let url = "nats://127.0.0.1:4240";
    let store_id = unique("gap");
    let backend: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let writer_link = link(url).await;
    let publisher = Publisher::builder(&writer_link, &store_id).build().unwrap();
    let writer = PublishLayer::new(publisher).layer(backend.clone());
    let key = KeyName::new("fleet-gap/k").unwrap();
    writer.store(&key, "v".into()).await.unwrap();
    let links = vec![link(url).await, link(url).await];
    let fleet = TestFleet::start(
        10,
        backend.clone(),
        &store_id,
        &links,
        &key,
        Duration::from_secs(600),
        Duration::from_millis(5),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(30), || fleet.all_following()
            && fleet.min_seen() == 1)
        .await
    );
    writer.store(&key, "v".into()).await.unwrap();
    assert!(eventually(Duration::from_secs(10), || fleet.min_seen() == 2).await);

    // The server dies and comes back without its store: the stream, and the sequence the
    // subscribers had reached, are gone. Meanwhile the key changed with no message at all.
    let _ = server.kill();
    let _ = server.wait();
    backend.store(&key, "v".into()).await.unwrap();
    server = start("second");
    assert!(
        eventually(Duration::from_secs(30), || fleet.min_seen() == 3).await,
        "lowest version served {}",
        fleet.min_seen()
    );
    assert!(links.iter().all(|l| l.metrics().gap_count(&store_id) >= 1));
    assert_eq!(fleet.regressions.load(Ordering::Relaxed), 0);
    assert_eq!(fleet.errors.load(Ordering::Relaxed), 0);
    let _ = server.kill();
    let _ = server.wait();
}
