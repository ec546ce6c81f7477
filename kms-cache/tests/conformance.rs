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
