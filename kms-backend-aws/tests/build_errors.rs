//! Misconfiguration is a `Configuration` error when the store is built, and no public path
//! panics outside a Tokio runtime: an empty namespace, a config without a region, an empty
//! KMS key id, calls made with no runtime. No peer is needed.

mod common;

use futures::executor::block_on;
use kms_backend_aws::sdk::aws_config::SdkConfig;
use kms_backend_aws::sdk::aws_sdk_secretsmanager;
use kms_backend_aws::{AwsConnection, AwsKmsProvider, SecretsManagerStore, VersionStage};
use kms_core::{CryptoProvider, EncryptionContext, ErrorKind, KeyName, KeyPrefix, KeyStore};

/// A config for a closed port, loaded on a runtime that is then dropped.
fn loaded_elsewhere() -> SdkConfig {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(common::connection("http://127.0.0.1:9").load())
        .unwrap()
}

#[test]
fn an_empty_namespace_is_a_configuration_error() {
    let config = loaded_elsewhere();
    for empty in ["", "/", "//"] {
        let err = SecretsManagerStore::builder(&config)
            .namespace(empty)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{empty:?}: {err}");
    }
    for bad in ["../x", "a//b", "/a"] {
        let err = SecretsManagerStore::builder(&config)
            .namespace(bad)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{bad:?}: {err}");
    }
}

#[test]
fn a_config_without_a_region_is_a_configuration_error_at_build() {
    // A service's own SdkConfig with no region.
    let config = SdkConfig::builder()
        .behavior_version(kms_backend_aws::sdk::aws_config::BehaviorVersion::latest())
        .build();
    let err = SecretsManagerStore::builder(&config).build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    assert!(err.message().contains("AWS_REGION"), "{err}");
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let err = SecretsManagerStore::builder_from_client(client)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    let err = AwsKmsProvider::new(&config, "alias/x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    // An empty region is no region.
    let err = block_on_runtime(AwsConnection::new().region("").load()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
}

#[test]
fn an_empty_kms_key_id_is_a_configuration_error() {
    let config = loaded_elsewhere();
    for empty in ["", "  "] {
        let err = AwsKmsProvider::new(&config, empty).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{empty:?}: {err}");
    }
}

fn block_on_runtime<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Every public async path, driven by an executor that is not Tokio: a Configuration error
/// that says so, not a panic inside the SDK.
#[test]
fn no_public_path_panics_outside_a_tokio_runtime() {
    let err = block_on(common::connection("http://127.0.0.1:9").load()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    assert!(err.message().contains("Tokio runtime"), "{err}");

    let config = loaded_elsewhere();
    // Building needs no runtime.
    let store = SecretsManagerStore::builder(&config).build().unwrap();
    let kms = AwsKmsProvider::new(&config, "alias/x").unwrap();
    let k = KeyName::new("app/db").unwrap();
    let ctx = EncryptionContext::new();
    let errs = [
        block_on(store.get(&k)).unwrap_err(),
        block_on(store.get_version(&k, "v")).unwrap_err(),
        block_on(store.get_stage(&k, &VersionStage::Previous)).unwrap_err(),
        block_on(store.store(&k, "v".into())).unwrap_err(),
        block_on(store.remove(&k)).unwrap_err(),
        block_on(store.list(&KeyPrefix::all())).unwrap_err(),
        block_on(store.health()).unwrap_err(),
        block_on(kms.encrypt(&"v".into(), &ctx)).unwrap_err(),
        block_on(kms.decrypt(b"ct", &ctx)).unwrap_err(),
        block_on(kms.generate_data_key(&ctx)).unwrap_err(),
    ];
    for err in errs {
        assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
        assert!(err.message().contains("Tokio runtime"), "{err}");
    }
}

/// A Tokio runtime built without its I/O and time drivers (`Builder::new_current_thread()
/// .build()`, no `enable_all`): the SDK's HTTP client and timers would panic; every call is
/// a `Configuration` error that names the missing drivers instead.
#[test]
fn no_public_path_panics_in_a_runtime_without_drivers() {
    let bare = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let config = loaded_elsewhere();
    let store = SecretsManagerStore::builder(&config).build().unwrap();
    let kms = AwsKmsProvider::new(&config, "alias/x").unwrap();
    let k = KeyName::new("app/db").unwrap();
    let ctx = EncryptionContext::new();
    let errs = bare.block_on(async {
        [
            store.get(&k).await.unwrap_err(),
            store.store(&k, "v".into()).await.unwrap_err(),
            store.remove(&k).await.unwrap_err(),
            store.list(&KeyPrefix::all()).await.unwrap_err(),
            store.health().await.unwrap_err(),
            kms.encrypt(&"v".into(), &ctx).await.unwrap_err(),
        ]
    });
    // Only timers, or only I/O: still refused (the SDK needs both).
    let timers_only = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let io_only = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let errs = errs.into_iter().chain([
        timers_only.block_on(store.get(&k)).unwrap_err(),
        io_only.block_on(store.get(&k)).unwrap_err(),
    ]);
    for err in errs {
        assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
        assert!(err.message().contains("no I/O or no time driver"), "{err}");
    }
}
