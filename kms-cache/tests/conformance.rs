//! The conformance suite over the cache, with every option combination the crate ships.

use std::time::Duration;

use kms_cache::{CacheLayer, Capacity};
use kms_core::MemoryStore;

mod defaults {
    use super::*;
    kms_core::conformance_tests!(CacheLayer::new().wrap(MemoryStore::new()));
}

mod all_options_on {
    use super::*;
    kms_core::conformance_tests!(
        CacheLayer::new()
            .ttl(Duration::from_secs(60))
            .time_to_idle(Duration::from_secs(30))
            .refresh_ahead(0.5)
            .stale_if_error(Duration::from_secs(600))
            .negative_ttl(Duration::from_secs(5))
            .wrap(MemoryStore::new())
    );
}

mod negative_caching_only {
    use super::*;
    kms_core::conformance_tests!(
        CacheLayer::new()
            .negative_ttl(Duration::from_secs(30))
            .wrap(MemoryStore::new())
    );
}

mod byte_bounded_no_jitter {
    use super::*;
    kms_core::conformance_tests!(
        CacheLayer::new()
            .capacity(Capacity::Bytes(64 * 1024))
            .jitter(0.0)
            .refresh_ahead(0.9)
            .wrap(MemoryStore::new())
    );
}

/// The cancellation harness over the cache, with the backend it wraps to compare with and the
/// cache's in-flight loads as its bookkeeping: every operation dropped at every await point
/// leaves a cache that agrees with the backend, and no load behind.
mod cancellation {
    use kms_core::Layer;
    use kms_core::cancellation::cancellation_safety_over;

    use super::*;

    async fn over(layer: CacheLayer) {
        let handle = layer.handle();
        cancellation_safety_over(|backend| layer.layer(backend), &move || {
            handle.loads_in_flight()
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn defaults() {
        over(CacheLayer::new()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn all_options_on() {
        over(
            CacheLayer::new()
                .ttl(Duration::from_secs(60))
                .time_to_idle(Duration::from_secs(30))
                .refresh_ahead(0.5)
                .stale_if_error(Duration::from_secs(600))
                .stale_while_revalidate(Duration::ZERO)
                .negative_ttl(Duration::from_secs(5)),
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn byte_bounded() {
        over(
            CacheLayer::new()
                .capacity(Capacity::Bytes(64 * 1024))
                .jitter(0.0),
        )
        .await;
    }

    /// Built outside a runtime: loads run in their callers and are abandoned with them.
    #[test]
    fn without_a_runtime() {
        let layer = CacheLayer::new();
        let handle = layer.handle();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(cancellation_safety_over(
            |backend| {
                // Built on a plain thread: no runtime to capture.
                std::thread::scope(|s| s.spawn(|| layer.layer(backend)).join().unwrap())
            },
            &move || handle.loads_in_flight(),
        ));
    }
}
