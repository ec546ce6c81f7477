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
/// `remove` and `list` alike. With `restore_deleted(true)`, since the suite writes keys again
/// after removing them (`cancellation_safety`): in the window AWS refuses a write to a removed
/// key, and the store's answer to that is a `Conflict` (the default, on purpose: the secret
/// holds 30 days of recovery that a write would end) or a restore first (this option). The
/// refusal itself is tested in server_behaviour.rs.
mod secrets_manager_recovery_window {
    use super::*;
    kms_core::conformance_tests!(
        SecretsManagerStore::builder(&common::config().await)
            .restore_deleted(true)
            .build()
            .unwrap()
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
