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
    use std::sync::{Arc, Mutex};

    use kms_cache::CacheHandle;
    use kms_core::KeyStore;
    use kms_core::conformance::cancellation_safety_over;

    use super::*;

    /// The handle of the cache built last: the harness builds one per backend it runs over,
    /// and a layer's own handle stays with the first.
    #[derive(Clone, Default)]
    struct Latest(Arc<Mutex<Option<CacheHandle>>>);

    impl Latest {
        fn wrap(&self, layer: &CacheLayer, backend: Arc<dyn KeyStore>) -> Arc<dyn KeyStore> {
            let cached = layer.wrap(backend);
            *self.0.lock().unwrap() = Some(cached.handle());
            Arc::new(cached)
        }

        fn loads_in_flight(&self) -> usize {
            self.0
                .lock()
                .unwrap()
                .as_ref()
                .map_or(0, |h| h.loads_in_flight())
        }
    }

    async fn over(layer: CacheLayer) {
        let latest = Latest::default();
        let loads = latest.clone();
        cancellation_safety_over(|backend| latest.wrap(&layer, backend), &move || {
            loads.loads_in_flight()
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

    /// The recommended stack below the metrics layer: cache → breaker → retry → timeout, every
    /// operation dropped at every await point; the bookkeeping is the cache's loads and the
    /// breaker's trials together.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn over_the_resilience_stack() {
        use kms_core::{CircuitBreakerLayer, RetryLayer, StoreBuilder, TimeoutLayer};

        let cache = CacheLayer::new()
            .refresh_ahead(0.5)
            .stale_if_error(Duration::from_secs(600));
        let breaker = CircuitBreakerLayer::new();
        let latest = Latest::default();
        let (loads, trials) = (latest.clone(), breaker.handle());
        cancellation_safety_over(
            |backend| {
                let (cache, latest) = (cache.clone(), latest.clone());
                StoreBuilder::from_arc(backend)
                    .layer(move |inner| latest.wrap(&cache, inner))
                    .resilience(breaker.clone(), RetryLayer::new(), TimeoutLayer::new())
                    .try_build()
                    .unwrap()
            },
            &move || loads.loads_in_flight() + trials.trials_in_flight() as usize,
        )
        .await;
    }

    /// Built outside a runtime: loads run in their callers and are abandoned with them.
    #[test]
    fn without_a_runtime() {
        let layer = CacheLayer::new();
        let latest = Latest::default();
        let loads = latest.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(cancellation_safety_over(
            |backend| {
                // Built on a plain thread: no runtime to capture.
                std::thread::scope(|s| s.spawn(|| latest.wrap(&layer, backend)).join().unwrap())
            },
            &move || loads.loads_in_flight(),
        ));
    }
}
