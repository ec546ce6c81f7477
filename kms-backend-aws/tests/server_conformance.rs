//! The kms-core conformance suites against the moto server: the Secrets Manager store (plain,
//! in a namespace, with the default recovery window), KMS as a crypto provider, and the
//! envelope decorator with KMS over Secrets Manager and over memory.

mod common;

use std::sync::Arc;

use kms_backend_aws::SecretsManagerStore;
use kms_core::envelope::EnvelopeLayer;
use kms_core::{EncryptionContext, MemoryStore, StoreBuilder};

mod secrets_manager {
    use super::*;
    kms_core::conformance_tests!(common::store().await);
}

mod secrets_manager_namespaced {
    use super::*;
    kms_core::conformance_tests!(
        SecretsManagerStore::builder(&common::config().await)
            .namespace(&common::unique("conformance-ns"))
            .unwrap()
            .deletion(kms_backend_aws::Deletion::Force)
            .unwrap()
            .build()
            .unwrap()
    );
}

/// AWS's default deletion (a 30-day recovery window): removed keys are gone for `get`,
/// `remove` and `list` alike.
///
/// Every case but `cancellation_safety`, which writes a key again after removing it. With a
/// recovery window AWS refuses that write (`Conflict`, or a restore with
/// `restore_deleted(true)`: tested against AWS's answers in mock_errors.rs), while moto
/// accepts it and leaves the secret deleted, so the write is lost: moto's deviation, not
/// this store's. The case runs on the force-deleting variants above and below.
mod secrets_manager_recovery_window {
    use super::*;
    kms_core::conformance_tests!(@cases (
        SecretsManagerStore::builder(&common::config().await).build().unwrap()
    )
        store_then_get_returns_same_bytes,
        binary_values_round_trip,
        overwrite_replaces_value,
        get_missing_is_not_found,
        remove_then_get_is_not_found,
        remove_missing_is_not_found,
        list_with_and_without_prefix,
        concurrent_writers_and_readers_lose_nothing,
        invalid_names_are_rejected_before_the_store,
        oversized_values_are_rejected,
        versions_are_kept_when_declared,
        empty_value_is_rejected,
        names_with_every_allowed_character_round_trip,
        retried_write_is_one_version,
        health_and_labels,
    );
}

async fn enveloped<S: kms_core::KeyStore>(inner: S) -> impl kms_core::KeyStore {
    StoreBuilder::new(inner)
        .layer(
            EnvelopeLayer::new(Arc::new(common::kms_provider().await))
                .context(EncryptionContext::new().with("suite", "conformance")),
        )
        .build()
}

mod envelope_with_kms_over_secrets_manager {
    use super::*;
    kms_core::conformance_tests!(enveloped(common::store().await).await);
}

mod envelope_with_kms_over_memory {
    use super::*;
    kms_core::conformance_tests!(enveloped(MemoryStore::new()).await);
}

#[tokio::test]
async fn kms_provider_conformance() {
    let kms = common::kms_provider().await;
    kms_core::conformance::crypto_provider_conformance(&kms).await;
}
