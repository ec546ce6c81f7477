//! The conformance suite over `MemoryStore` and over the decorators `kms-core` ships.

use kms_core::fault::FaultStore;
use kms_core::{MemoryStore, StoreBuilder, ValidateLayer};

mod memory {
    use super::*;
    kms_core::conformance_tests!(MemoryStore::new());
}

mod memory_small_limits {
    use super::*;
    kms_core::conformance_tests!(
        MemoryStore::builder()
            .max_versions(2)
            .max_value_len(300)
            .build()
    );
}

mod fault_without_faults {
    use super::*;
    kms_core::conformance_tests!(FaultStore::new(MemoryStore::new()));
}

mod validate {
    use super::*;
    kms_core::conformance_tests!(
        StoreBuilder::new(MemoryStore::new())
            .layer(ValidateLayer::new().max_value_len(1000))
            .build()
    );
}

mod stacked {
    use super::*;
    kms_core::conformance_tests!(
        StoreBuilder::new(FaultStore::new(MemoryStore::new()))
            .layer(ValidateLayer::new())
            .layer(ValidateLayer::new().max_value_len(2048))
            .build()
    );
}
