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
