//! Loads dropped by their callers, measured: `get`s of distinct keys against a backend that
//! never answers, each dropped after its first poll, leave no memory behind once their loads
//! have ended (at the load timeout). Counted by dhat's global allocator, in its own test binary.

use std::time::Duration;

use futures::FutureExt;
use kms_cache::CacheLayer;
use kms_core::fault::FaultStore;
use kms_core::{KeyName, KeyStore, MemoryStore, Operation, StoreBuilder};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const KEYS: usize = 5_000;

fn live_bytes() -> usize {
    dhat::HeapStats::get().curr_bytes
}

#[test]
fn memory_is_flat_after_dropped_loads() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let backend = FaultStore::new(MemoryStore::new());
        backend.handle().hang(Operation::Get);
        let layer = CacheLayer::new().load_timeout(Duration::from_secs(1));
        let handle = layer.handle();
        let store = StoreBuilder::new(backend).layer(layer).build();
        let keys: Vec<KeyName> = (0..KEYS)
            .map(|i| KeyName::new(format!("leak/{i:05}")).unwrap())
            .collect();
        let round = || async {
            for k in &keys {
                assert!(store.get(k).now_or_never().is_none());
            }
            assert_eq!(handle.loads_in_flight(), KEYS);
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert_eq!(handle.loads_in_flight(), 0);
            live_bytes()
        };
        // The first round sizes what is reused (the flight map's table, the runtime's task
        // slab and timer wheel); later rounds must not grow.
        let first = round().await;
        let second = round().await;
        let third = round().await;
        let growth = third.saturating_sub(first).max(second.saturating_sub(first));
        // A dropped load that kept its bookkeeping would leak ~250 B: 1.2 MB per round here.
        assert!(
            growth < 16 * 1024,
            "{growth} bytes more after {KEYS} dropped loads (first {first}, second {second}, third {third})"
        );
    });
}
