//! The failover and monotonic-reads layers over memory stores with injected faults: the
//! conformance suite, switching within one breaker window, loud writes, fail-back with
//! hysteresis under a flapping primary, and targets that are behind.

use std::sync::Arc;
use std::time::Duration;

use kms_core::fault::FaultStore;
use kms_core::{
    CircuitBreakerLayer, ErrorKind, FailoverLayer, FailoverTarget, KeyName, KeyStore, Layer,
    MemoryStore, MonotonicLayer, Operation, StoreBuilder,
};

mod conformance_failover {
    use super::*;
    kms_core::conformance_tests!(
        StoreBuilder::new(MemoryStore::new())
            .layer(
                FailoverLayer::new("primary")
                    .replica(FailoverTarget::new("replica", Arc::new(MemoryStore::new())))
            )
            .build()
    );
}

mod conformance_monotonic {
    use super::*;
    kms_core::conformance_tests!(
        StoreBuilder::new(MemoryStore::new())
            .layer(MonotonicLayer::new())
            .build()
    );
}

fn key(name: &str) -> KeyName {
    KeyName::new(name).unwrap()
}

/// Primary and replica memory stores behind fault injectors, holding `k` = "v1" in both.
async fn pair() -> (FaultStore<MemoryStore>, FaultStore<MemoryStore>) {
    let (primary, replica) = (
        FaultStore::new(MemoryStore::new()),
        FaultStore::new(MemoryStore::new()),
    );
    primary.store(&key("k"), "v1".into()).await.unwrap();
    replica.store(&key("k"), "v1".into()).await.unwrap();
    (primary, replica)
}

#[tokio::test]
async fn reads_switch_when_the_primary_breaker_opens_and_writes_fail_loudly() {
    let (primary, replica) = pair().await;
    let (pf, rf) = (primary.handle(), replica.handle());
    let breaker = CircuitBreakerLayer::new()
        .window(4)
        .min_calls(2)
        .failure_ratio(0.5)
        .open_delay(Duration::from_secs(60));
    let failover = FailoverLayer::new("primary")
        .primary_circuit_breaker(&breaker.handle())
        .fail_after(100) // only the breaker takes it down here
        .replica(FailoverTarget::new("replica", Arc::new(replica)));
    let handle = failover.handle();
    let store = StoreBuilder::new(primary)
        .layer(failover)
        .layer(breaker)
        .build();
    assert_eq!(
        store
            .get(&key("k"))
            .await
            .unwrap()
            .value
            .expose_str()
            .unwrap(),
        "v1"
    );
    assert_eq!(handle.active(), "primary");

    pf.fail_always(Operation::Get, ErrorKind::Unavailable);
    // Every read still answers (the replica, at once); the breaker opens within its window,
    // and the next call switches.
    for _ in 0..3 {
        assert_eq!(
            store
                .get(&key("k"))
                .await
                .unwrap()
                .value
                .expose_str()
                .unwrap(),
            "v1"
        );
    }
    assert_eq!(handle.active(), "replica");
    assert_eq!(handle.failovers(), 1);
    let primary_reads = pf.calls(Operation::Get);
    store.get(&key("k")).await.unwrap();
    assert_eq!(
        pf.calls(Operation::Get),
        primary_reads,
        "reads no longer try the primary"
    );
    assert!(rf.calls(Operation::Get) >= 4);

    // Writes go to the primary only: refused (circuit open), loudly, never to the replica.
    let writes = rf.calls(Operation::Store);
    let err = store.store(&key("k"), "v2".into()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert!(
        err.to_string()
            .contains("writes go to the primary 'primary' only"),
        "{err}"
    );
    assert!(err.to_string().contains("served by 'replica'"), "{err}");
    assert_eq!(rf.calls(Operation::Store), writes);
}

#[tokio::test(start_paused = true)]
async fn fail_back_waits_for_a_quiet_hold_down_and_a_flapping_primary_stays_out() {
    let (primary, replica) = pair().await;
    let pf = primary.handle();
    let failover = FailoverLayer::new("primary")
        .fail_after(1)
        .fail_back_after(3)
        .hold_down(Duration::from_secs(10))
        .probe_interval(Duration::from_secs(1))
        .probe_timeout(Duration::from_millis(500))
        .replica(FailoverTarget::new("replica", Arc::new(replica)));
    let handle = failover.handle();
    let store = failover.layer(Arc::new(primary));

    pf.fail_always(Operation::Get, ErrorKind::Timeout);
    pf.fail_always(Operation::Health, ErrorKind::Timeout);
    store.get(&key("k")).await.unwrap();
    assert_eq!(handle.active(), "replica");
    assert!(handle.is_down("primary"));

    // Flapping: healthy 2 s, down 1 s, for 30 s; reads every 250 ms drive the probes.
    for second in 0..30u64 {
        if second % 3 == 2 {
            pf.fail_always(Operation::Health, ErrorKind::Unavailable);
        } else {
            pf.clear();
            pf.fail_always(Operation::Get, ErrorKind::Timeout);
        }
        for _ in 0..4 {
            store.get(&key("k")).await.unwrap();
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert_eq!(
            handle.active(),
            "replica",
            "failed back during a flap at {second} s"
        );
    }
    assert_eq!(handle.failovers(), 1, "no flapping between targets");

    // Stable again: back after the hold-down, once.
    pf.clear();
    for _ in 0..60 {
        store.get(&key("k")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(handle.active(), "primary");
    assert_eq!(handle.failovers(), 2);
}

#[tokio::test]
async fn a_target_behind_a_version_already_returned_is_skipped_and_counted() {
    let (primary, replica) = (MemoryStore::new(), Arc::new(MemoryStore::new()));
    let k = key("k");
    primary.store(&k, "v1".into()).await.unwrap();
    primary.store(&k, "v2".into()).await.unwrap();
    replica.store(&k, "v1".into()).await.unwrap();
    let primary = FaultStore::new(primary);
    let pf = primary.handle();
    let monotonic = MonotonicLayer::new();
    let failover = FailoverLayer::new("primary")
        .floors(monotonic.floors())
        .replica(FailoverTarget::new("replica", replica.clone()));
    let behind = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = behind.clone();
    failover.handle().on_behind(move |target| {
        assert_eq!(target, "replica");
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    let store = StoreBuilder::new(primary)
        .layer(monotonic.clone())
        .layer(failover)
        .build();
    assert_eq!(
        store.get(&k).await.unwrap().meta.version.as_deref(),
        Some("2")
    );

    // The primary is unreachable; the replica holds only version 1: never returned.
    pf.fail_always(Operation::Get, ErrorKind::Unavailable);
    let err = store.get(&k).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(behind.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    // Once the replica catches up, it serves.
    replica.store(&k, "v2".into()).await.unwrap();
    assert_eq!(
        store.get(&k).await.unwrap().value.expose_str().unwrap(),
        "v2"
    );
}

#[test]
fn bad_settings_are_configuration_errors_naming_the_setting() {
    let replica = || FailoverTarget::new("r", Arc::new(MemoryStore::new()));
    for (layer, setting) in [
        (FailoverLayer::new("p"), "replicas"),
        (
            FailoverLayer::new("p").replica(replica()).fail_after(0),
            "fail_after",
        ),
        (
            FailoverLayer::new("p")
                .replica(replica())
                .fail_back_after(0),
            "fail_back_after",
        ),
        (
            FailoverLayer::new("p")
                .replica(replica())
                .probe_interval(Duration::ZERO),
            "probe_interval",
        ),
        (
            FailoverLayer::new("p")
                .replica(replica())
                .probe_timeout(Duration::ZERO),
            "probe_timeout",
        ),
        (FailoverLayer::new("r").replica(replica()), "targets"),
    ] {
        let err = layer.validate().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration);
        assert!(err.to_string().contains(setting), "{setting}: {err}");
    }
}
