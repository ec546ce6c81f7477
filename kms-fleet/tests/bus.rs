//! Invalidation over one NATS server (scripts/peers/nats.sh) with in-memory backends: writes
//! reach every cache, bad messages are ignored and counted, repeated messages cost at most
//! one reload per key per interval, a NATS outage never fails a write.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Counting, TestFleet, eventually, link, nats_url, unique};
use kms_cache::CacheLayer;
use kms_core::Layer;
use kms_core::{KeyName, KeyStore, MemoryStore};
use kms_fleet::{
    ApplyAction, Change, ChangeKind, FleetLink, IgnoreReason, PublishLayer, PublishOutcome,
    Publisher, Subscriber, key_subject,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_write_reaches_every_cache_and_none_goes_back() {
    let url = nats_url();
    let store_id = unique("bus");
    let backend: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let writer_link = link(&url).await;
    let publisher = Publisher::builder(&writer_link, &store_id).build().unwrap();
    let writer = PublishLayer::new(publisher).layer(backend.clone());
    let key = KeyName::new("fleet-bus/db").unwrap();
    writer.store(&key, "v1".into()).await.unwrap();
    // Ten links, ten caches on each: 100 caches.
    let mut links = Vec::new();
    for _ in 0..10 {
        links.push(link(&url).await);
    }
    let fleet = TestFleet::start(
        100,
        backend.clone(),
        &store_id,
        &links,
        &key,
        Duration::from_secs(600),
        Duration::from_millis(2),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(20), || fleet.all_following()
            && fleet.min_seen() == 1)
        .await
    );
    for round in 2..=20u64 {
        let meta = writer
            .store(&key, format!("v{round}").into())
            .await
            .unwrap();
        assert_eq!(meta.version.as_deref(), Some(round.to_string().as_str()));
        assert!(
            eventually(Duration::from_secs(10), || fleet.min_seen() == round).await,
            "round {round}: lowest version served {}",
            fleet.min_seen()
        );
    }
    assert_eq!(fleet.regressions.load(Ordering::Relaxed), 0);
    assert_eq!(fleet.errors.load(Ordering::Relaxed), 0);
    let metrics = links[0].metrics();
    assert!(metrics.applied_count(&store_id, ApplyAction::Dropped) >= 19);
    assert!(
        writer_link
            .metrics()
            .published_count(&store_id, PublishOutcome::Published)
            >= 20
    );
}

/// Publishes raw bytes on `key`'s subject of `store_id`.
async fn publish_raw(link: &FleetLink, store_id: &str, key: &str, bytes: Vec<u8>) {
    link.stream(store_id).await.unwrap();
    let subject = key_subject(link.prefix(), store_id, &KeyName::new(key).unwrap());
    link.jetstream()
        .publish(subject, bytes.into())
        .await
        .unwrap()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_ignored_and_counted() {
    let url = nats_url();
    let store_id = unique("bad");
    let backend = Arc::new(MemoryStore::new());
    let key = KeyName::new("fleet-bad/k").unwrap();
    backend.store(&key, "v1".into()).await.unwrap();
    let cached = CacheLayer::new()
        .ttl(Duration::from_secs(600))
        .wrap(backend.clone());
    let sub_link = link(&url).await;
    let subscriber = Subscriber::builder(&sub_link, &store_id, cached.handle())
        .spawn()
        .unwrap();
    cached.get(&key).await.unwrap();
    assert!(eventually(Duration::from_secs(10), || subscriber.is_following()).await);

    let pub_link = link(&url).await;
    let good = Change::new(&store_id, &key, Some("9"), ChangeKind::Write, "forger", 1);
    let mut value_like: serde_json::Value = serde_json::from_slice(&good.encode()).unwrap();
    value_like["value"] = "hunter2".into();
    let mut other_store = good.clone();
    other_store.store = "someone-else".into();
    let mut huge_key = good.clone();
    huge_key.key = "k".repeat(300);
    let too_large = vec![b' '; 4096];
    publish_raw(
        &pub_link,
        &store_id,
        key.as_str(),
        serde_json::to_vec(&value_like).unwrap(),
    )
    .await;
    publish_raw(&pub_link, &store_id, key.as_str(), other_store.encode()).await;
    publish_raw(&pub_link, &store_id, key.as_str(), huge_key.encode()).await;
    publish_raw(&pub_link, &store_id, key.as_str(), too_large).await;
    publish_raw(&pub_link, &store_id, key.as_str(), b"{not json".to_vec()).await;

    let m = sub_link.metrics().clone();
    let sid = store_id.clone();
    assert!(
        eventually(Duration::from_secs(10), || {
            IgnoreReason::ALL
                .iter()
                .map(|r| m.ignored_count(&sid, *r))
                .sum::<u64>()
                == 5
        })
        .await
    );
    for reason in IgnoreReason::ALL {
        assert_eq!(m.ignored_count(&store_id, reason), 1, "{reason}");
    }
    // Nothing was applied: the cached entry is still there at its version.
    assert_eq!(cached.handle().cached_version(&key), Some(Some("1".into())));
    assert_eq!(m.applied_count(&store_id, ApplyAction::Dropped), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_changes_cost_one_reload_per_key_per_interval() {
    let url = nats_url();
    let store_id = unique("rep");
    let backend = Arc::new(Counting::new(MemoryStore::new()));
    let gets = backend.gets.clone();
    let key = KeyName::new("fleet-rep/k").unwrap();
    backend.store(&key, "v1".into()).await.unwrap();
    let cached = Arc::new(
        CacheLayer::new()
            .ttl(Duration::from_secs(600))
            .wrap(backend),
    );
    let sub_link = link(&url).await;
    let subscriber = Subscriber::builder(&sub_link, &store_id, cached.handle())
        .min_interval(Duration::from_millis(800))
        .spawn()
        .unwrap();
    cached.get(&key).await.unwrap();
    assert!(eventually(Duration::from_secs(10), || subscriber.is_following()).await);
    // A reader that keeps the key loaded.
    let reader = {
        let cached = cached.clone();
        let key = key.clone();
        tokio::spawn(async move {
            loop {
                let _ = cached.get(&key).await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let before = gets.load(Ordering::Relaxed);
    let pub_link = link(&url).await;
    let start = std::time::Instant::now();
    // Fifty forged changes with distinct versions, as fast as they go.
    for i in 0..50u64 {
        let forged = Change::new(
            &store_id,
            &key,
            Some(&format!("{}", 100 + i)),
            ChangeKind::Write,
            "forger",
            i,
        );
        publish_raw(&pub_link, &store_id, key.as_str(), forged.encode()).await;
    }
    let m = sub_link.metrics().clone();
    let sid = store_id.clone();
    assert!(
        eventually(Duration::from_secs(10), || {
            m.applied_count(&sid, ApplyAction::Dropped) >= 1
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(2000)).await;
    reader.abort();
    let elapsed = start.elapsed();
    let reloads = gets.load(Ordering::Relaxed) - before;
    let intervals = (elapsed.as_millis() / 800) as u64 + 1;
    assert!(
        reloads <= intervals,
        "{reloads} reloads in {elapsed:?} with an 800 ms interval"
    );
    assert!(m.applied_count(&store_id, ApplyAction::Dropped) <= intervals);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_succeeds_while_nats_is_unreachable() {
    // Nothing listens on 4259 (the top of this crate's port range).
    let link = FleetLink::builder("nats://127.0.0.1:4259")
        .connect()
        .await
        .unwrap();
    let store_id = unique("down");
    let publisher = Publisher::builder(&link, &store_id)
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let store = PublishLayer::new(publisher.clone()).layer(Arc::new(MemoryStore::new()));
    let key = KeyName::new("fleet-down/k").unwrap();
    let meta = store.store(&key, "v1".into()).await.unwrap();
    assert_eq!(meta.version.as_deref(), Some("1"));
    store.remove(&key).await.unwrap();
    assert!(!link.is_up());
    assert_eq!(
        publisher.outbox_len(),
        1,
        "the latest change of the key is kept"
    );
    assert_eq!(
        link.metrics()
            .published_count(&store_id, PublishOutcome::Queued),
        2
    );
}
