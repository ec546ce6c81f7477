//! The kms-core conformance suite against a real OpenBao dev server (KV v2, KV v1, a prefixed
//! store, and the envelope decorator over KV v2 with Transit).

mod common;

use std::sync::Arc;

use kms_backend_vault::{KvVersion, VaultStore, VaultTransitProvider};
use kms_core::envelope::EnvelopeLayer;
use kms_core::{EncryptionContext, StoreBuilder};

mod kv2 {
    use super::*;
    kms_core::conformance_tests!(
        VaultStore::builder(common::root_client().await)
            .build()
            .unwrap()
    );
}

mod kv2_prefixed {
    use super::*;
    kms_core::conformance_tests!(
        VaultStore::builder(common::root_client().await)
            .prefix("kms-tests/prefixed")
            .build()
            .unwrap()
    );
}

mod kv1 {
    use super::*;
    kms_core::conformance_tests!(
        VaultStore::builder(common::root_client().await)
            .mount("kv1")
            .kv_version(KvVersion::V1)
            .build()
            .unwrap()
    );
}

async fn enveloped() -> impl kms_core::KeyStore {
    let client = common::root_client().await;
    let transit = VaultTransitProvider::new(client.clone(), "kms-conformance-envelope").unwrap();
    transit.ensure_key().await.expect("transit key");
    StoreBuilder::new(VaultStore::builder(client).build().unwrap())
        .layer(
            EnvelopeLayer::new(Arc::new(transit))
                .context(EncryptionContext::new().with("suite", "conformance")),
        )
        .build()
}

mod envelope_over_kv2_with_transit {
    use super::*;
    kms_core::conformance_tests!(enveloped().await);
}

#[tokio::test]
async fn transit_provider_conformance() {
    let transit =
        VaultTransitProvider::new(common::root_client().await, common::unique("transit")).unwrap();
    transit.ensure_key().await.unwrap();
    // Idempotent on an existing derived key.
    transit.ensure_key().await.unwrap();
    kms_core::conformance::crypto_provider_conformance(&transit).await;
}
