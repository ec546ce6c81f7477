//! The conformance suite over each resilience layer alone and over the recommended stack.

use kms_core::fault::FaultStore;
use kms_core::{
    CircuitBreakerLayer, MemoryStore, RetryLayer, StoreBuilder, TimeoutLayer, ValidateLayer,
};

mod retry {
    use super::*;
    kms_core::conformance_tests!(
        StoreBuilder::new(MemoryStore::new())
            .layer(RetryLayer::new())
            .build()
    );
}

mod timeout {
    use super::*;
    kms_core::conformance_tests!(
        StoreBuilder::new(MemoryStore::new())
            .layer(TimeoutLayer::new())
            .build()
    );
}

mod breaker {
    use super::*;
    kms_core::conformance_tests!(
        StoreBuilder::new(MemoryStore::new())
            .layer(CircuitBreakerLayer::new())
            .build()
    );
}

mod stacked {
    use super::*;
    kms_core::conformance_tests!(
        StoreBuilder::new(FaultStore::new(MemoryStore::new()))
            .layer(ValidateLayer::new())
            .default_resilience()
            .build()
    );
}

mod stacked_small_limits {
    use super::*;
    kms_core::conformance_tests!(
        StoreBuilder::new(
            MemoryStore::builder()
                .max_versions(2)
                .max_value_len(300)
                .build()
        )
        .resilience(
            CircuitBreakerLayer::new(),
            RetryLayer::new(),
            TimeoutLayer::new()
        )
        .build()
    );
}

/// The cancellation harness over each layer, with the backend it wraps to compare with.
mod cancellation {
    use std::sync::Arc;

    use kms_core::conformance::cancellation_safety_over;
    use kms_core::{KeyStore, Layer};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn breaker() {
        let layer = CircuitBreakerLayer::new();
        let handle = layer.handle();
        cancellation_safety_over(|b| layer.layer(b), &move || {
            handle.trials_in_flight() as usize
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retry() {
        cancellation_safety_over(|b| RetryLayer::new().layer(b), &|| 0).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn timeout() {
        cancellation_safety_over(|b| TimeoutLayer::new().layer(b), &|| 0).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn validate() {
        cancellation_safety_over(|b| ValidateLayer::new().layer(b), &|| 0).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn recommended_stack() {
        let breaker = CircuitBreakerLayer::new();
        let handle = breaker.handle();
        cancellation_safety_over(
            |b| {
                StoreBuilder::from_arc(b)
                    .layer(ValidateLayer::new())
                    // This breaker, whose trials the harness counts (not a fresh default one).
                    .resilience(breaker.clone(), RetryLayer::new(), TimeoutLayer::new())
                    .try_build()
                    .unwrap()
            },
            &move || handle.trials_in_flight() as usize,
        )
        .await;
    }

    /// A cache that invalidates only after a write returns (a cache that clears its entry too late):
    /// the harness must catch it.
    #[derive(Debug)]
    struct InvalidatesAfterTheWrite {
        inner: Arc<dyn KeyStore>,
        cached:
            std::sync::Mutex<std::collections::HashMap<kms_core::KeyName, kms_core::StoredSecret>>,
    }

    impl std::fmt::Display for InvalidatesAfterTheWrite {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "NaiveCache({})", self.inner)
        }
    }

    #[kms_core::async_trait]
    impl KeyStore for InvalidatesAfterTheWrite {
        fn backend(&self) -> &'static str {
            self.inner.backend()
        }
        fn capabilities(&self) -> kms_core::Capabilities {
            self.inner.capabilities()
        }
        async fn get(&self, key: &kms_core::KeyName) -> kms_core::Result<kms_core::StoredSecret> {
            if let Some(hit) = self.cached.lock().unwrap().get(key) {
                return Ok(hit.clone());
            }
            let got = self.inner.get(key).await?;
            self.cached.lock().unwrap().insert(key.clone(), got.clone());
            Ok(got)
        }
        async fn store(
            &self,
            key: &kms_core::KeyName,
            value: kms_core::SecretValue,
        ) -> kms_core::Result<kms_core::SecretMeta> {
            let meta = self.inner.store(key, value).await;
            self.cached.lock().unwrap().remove(key);
            meta
        }
        async fn remove(&self, key: &kms_core::KeyName) -> kms_core::Result<()> {
            let done = self.inner.remove(key).await;
            self.cached.lock().unwrap().remove(key);
            done
        }
        async fn list(
            &self,
            prefix: &kms_core::KeyPrefix,
        ) -> kms_core::Result<Vec<kms_core::KeyName>> {
            self.inner.list(prefix).await
        }
        async fn health(&self) -> kms_core::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_harness_catches_a_cache_that_keeps_a_dropped_write_s_old_value() {
        let run = tokio::spawn(cancellation_safety_over(
            |inner| {
                Arc::new(InvalidatesAfterTheWrite {
                    inner,
                    cached: Default::default(),
                })
            },
            &|| 0,
        ));
        let err = run.await.expect_err("the harness passed a stale cache");
        assert!(err.is_panic());
    }
}
