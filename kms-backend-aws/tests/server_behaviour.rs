//! Secrets Manager and KMS behaviour against the moto server: rotation stages, pagination,
//! binary secrets, deletion modes, create options, namespaces, wrong encryption contexts.

mod common;

use std::sync::Arc;

use kms_backend_aws::sdk::aws_sdk_secretsmanager;
use kms_backend_aws::{AwsKmsProvider, Deletion, SecretsManagerStore, VersionStage};
use kms_core::envelope::EnvelopeLayer;
use kms_core::{
    CryptoProvider, EncryptionContext, ErrorKind, KeyName, KeyPrefix, KeyStore, KeyStoreExt,
    MemoryStore, SecretValue, StoreBuilder,
};

fn key(s: &str) -> KeyName {
    KeyName::new(s).unwrap()
}

fn sm_client(
    config: &kms_backend_aws::sdk::aws_config::SdkConfig,
) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(config)
}

/// A builder in namespace `ns` that force-deletes.
fn namespaced(
    config: &kms_backend_aws::sdk::aws_config::SdkConfig,
    ns: &str,
) -> kms_backend_aws::SecretsManagerStoreBuilder {
    SecretsManagerStore::builder(config)
        .namespace(ns)
        .unwrap()
        .deletion(Deletion::Force)
        .unwrap()
}

#[tokio::test]
async fn rotation_keeps_the_previous_version_readable() {
    let store = common::store().await;
    let k = key(&format!("{}/db", common::unique("rotation")));
    let v1 = store.store(&k, "password-1".into()).await.unwrap();
    let v2 = store.store(&k, "password-2".into()).await.unwrap();
    assert_ne!(v1.version, v2.version);

    let current = store.get(&k).await.unwrap();
    assert_eq!(current.value.expose_secret(), b"password-2");
    assert_eq!(current.meta.version, v2.version);
    assert!(current.meta.created_at.is_some(), "version creation date");

    let previous = store.get_stage(&k, &VersionStage::Previous).await.unwrap();
    assert_eq!(previous.value.expose_secret(), b"password-1");
    assert_eq!(previous.meta.version, v1.version);

    // A store that reads AWSPREVIOUS by default (a rotation-grace reader).
    let grace = SecretsManagerStore::builder(&common::config().await)
        .version_stage(VersionStage::Previous)
        .build()
        .unwrap();
    assert_eq!(
        grace.get(&k).await.unwrap().value.expose_secret(),
        b"password-1"
    );

    let err = store
        .get_stage(&k, &VersionStage::Custom("NO-SUCH-STAGE".into()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = store
        .get_version(&k, "00000000-0000-0000-0000-000000000000")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    store.remove(&k).await.unwrap();
}

#[tokio::test]
async fn list_follows_every_page() {
    let ns = common::unique("pages");
    let store = namespaced(&common::config().await, &ns)
        .list_page_size(3)
        .unwrap()
        .build()
        .unwrap();
    let mut keys: Vec<KeyName> = (0..11).map(|i| key(&format!("app/k{i:02}"))).collect();
    for k in &keys {
        store.store(k, "v".into()).await.unwrap();
    }
    store.store(&key("other/k"), "v".into()).await.unwrap();
    let mut listed = store.list(&KeyPrefix::new("app/").unwrap()).await.unwrap();
    listed.sort();
    assert_eq!(listed, keys, "11 names over pages of 3");
    let all = store.list(&KeyPrefix::all()).await.unwrap();
    assert_eq!(all.len(), 12);
    keys.push(key("other/k"));
    for k in &keys {
        store.remove(k).await.unwrap();
    }
    assert!(store.list(&KeyPrefix::all()).await.unwrap().is_empty());
}

/// More secrets than AWS's largest page (100), with the default page size.
#[tokio::test]
async fn list_more_than_one_full_page() {
    let ns = common::unique("bigpage");
    let store = namespaced(&common::config().await, &ns).build().unwrap();
    let keys: Vec<KeyName> = (0..105).map(|i| key(&format!("k{i:03}"))).collect();
    for k in &keys {
        store.store(k, "v".into()).await.unwrap();
    }
    let mut listed = store.list(&KeyPrefix::all()).await.unwrap();
    listed.sort();
    assert_eq!(listed, keys);
    for k in &keys {
        store.remove(k).await.unwrap();
    }
}

#[tokio::test]
async fn text_is_a_secret_string_and_bytes_a_secret_binary() {
    let config = common::config().await;
    let ns = common::unique("binary");
    let store = namespaced(&config, &ns).build().unwrap();
    let raw = sm_client(&config);

    store
        .store(&key("text"), "{\"user\":\"app\"}".into())
        .await
        .unwrap();
    let out = raw
        .get_secret_value()
        .secret_id(format!("{ns}/text"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.secret_string(),
        Some("{\"user\":\"app\"}"),
        "readable by other AWS tools"
    );
    assert!(out.secret_binary().is_none());

    let bytes: Vec<u8> = vec![0xff, 0x00, 0xfe, 0x80, 0x01];
    store
        .store(&key("bin"), SecretValue::from(bytes.clone()))
        .await
        .unwrap();
    let out = raw
        .get_secret_value()
        .secret_id(format!("{ns}/bin"))
        .send()
        .await
        .unwrap();
    assert!(out.secret_string().is_none());
    assert_eq!(out.secret_binary().unwrap().as_ref(), &bytes[..]);
    assert_eq!(
        store.get(&key("bin")).await.unwrap().value.expose_secret(),
        &bytes[..]
    );

    // A binary secret written by another tool reads back too.
    raw.create_secret()
        .name(format!("{ns}/foreign"))
        .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(vec![1, 2, 3]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        store
            .get(&key("foreign"))
            .await
            .unwrap()
            .value
            .expose_secret(),
        &[1, 2, 3]
    );
    for k in ["text", "bin", "foreign"] {
        store.remove(&key(k)).await.unwrap();
    }
}

#[tokio::test]
async fn force_delete_frees_the_name_at_once() {
    let store = common::store().await;
    let k = key(&format!("{}/k", common::unique("force")));
    store.store(&k, "one".into()).await.unwrap();
    store.remove(&k).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        store.remove(&k).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // The name is free: a new secret, with a fresh history.
    store.store(&k, "two".into()).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap().value.expose_secret(), b"two");
    let err = store
        .get_stage(&k, &VersionStage::Previous)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "no history after a forced delete: {err}"
    );
    store.remove(&k).await.unwrap();
}

#[tokio::test]
async fn recovery_window_blocks_the_name_until_restored() {
    let config = common::config().await;
    let k = key(&format!("{}/k", common::unique("window")));
    let store = SecretsManagerStore::builder(&config)
        .deletion(Deletion::RecoveryWindowDays(7))
        .unwrap()
        .build()
        .unwrap();
    store.store(&k, "one".into()).await.unwrap();
    store.remove(&k).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        store.remove(&k).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let prefix = KeyPrefix::from(k.clone());
    assert!(
        store.list(&prefix).await.unwrap().is_empty(),
        "scheduled secrets are not listed"
    );

    // A write to a secret scheduled for deletion: refused, as AWS does (moto 5.2.5 accepts
    // it and loses it; scripts/peers/moto_server.py makes it refuse, as AWS documents).
    let err = store.store(&k, "two".into()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(store.get(&k).await.unwrap_err().kind(), ErrorKind::NotFound);
    // With `restore_deleted`, the write restores the secret and lands.
    let restoring = SecretsManagerStore::builder(&config)
        .deletion(Deletion::RecoveryWindowDays(7))
        .unwrap()
        .restore_deleted(true)
        .build()
        .unwrap();
    restoring.store(&k, "three".into()).await.unwrap();
    assert_eq!(
        restoring.get(&k).await.unwrap().value.expose_secret(),
        b"three"
    );
    assert_eq!(store.list(&prefix).await.unwrap(), vec![k.clone()]);
    // Free the name for good:
    let raw = sm_client(&config);
    raw.delete_secret()
        .secret_id(k.as_str())
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
}

#[test]
fn recovery_window_outside_aws_limits_is_a_configuration_error() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = rt
        .block_on(common::connection("http://127.0.0.1:1").load())
        .unwrap();
    for days in [0, 6, 31] {
        let err = SecretsManagerStore::builder(&config)
            .deletion(Deletion::RecoveryWindowDays(days))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{days}: {err}");
    }
    let err = SecretsManagerStore::builder(&config)
        .list_page_size(0)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
}

#[tokio::test]
async fn created_secrets_carry_kms_key_description_and_tags() {
    let config = common::config().await;
    let kms = common::kms_provider().await;
    let ns = common::unique("create-opts");
    let store = SecretsManagerStore::builder(&config)
        .namespace(&ns)
        .unwrap()
        .kms_key_id(kms.key_id())
        .description("db credentials of the payments service")
        .tag("owner", "payments")
        .tag("env", "test")
        .deletion(Deletion::Force)
        .unwrap()
        .build()
        .unwrap();
    store.store(&key("db"), "pw".into()).await.unwrap();
    let described = sm_client(&config)
        .describe_secret()
        .secret_id(format!("{ns}/db"))
        .send()
        .await
        .unwrap();
    assert_eq!(described.kms_key_id(), Some(kms.key_id()));
    assert_eq!(
        described.description(),
        Some("db credentials of the payments service")
    );
    let mut tags: Vec<(String, String)> = described
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_owned(), t.value().unwrap().to_owned()))
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        [
            ("env".to_owned(), "test".to_owned()),
            ("owner".to_owned(), "payments".to_owned())
        ]
    );
    assert_eq!(
        store.get(&key("db")).await.unwrap().value.expose_secret(),
        b"pw"
    );
    store.remove(&key("db")).await.unwrap();
}

#[tokio::test]
async fn namespaces_do_not_see_each_other() {
    let config = common::config().await;
    let build = |ns: String| namespaced(&config, &ns).build().unwrap();
    let (a, b) = (build(common::unique("ns-a")), build(common::unique("ns-b")));
    let k = key("shared/name");
    a.store(&k, "from a".into()).await.unwrap();
    assert_eq!(b.get(&k).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert!(b.list(&KeyPrefix::all()).await.unwrap().is_empty());
    assert_eq!(
        a.list(&KeyPrefix::all()).await.unwrap(),
        std::slice::from_ref(&k)
    );
    b.store(&k, "from b".into()).await.unwrap();
    assert_eq!(a.get(&k).await.unwrap().value.expose_secret(), b"from a");
    a.remove(&k).await.unwrap();
    b.remove(&k).await.unwrap();
    assert!(a.to_string().starts_with("SecretsManager(ns-a"), "{a}");
}

#[tokio::test]
async fn health_passes_on_the_emulator_and_fails_on_a_closed_port() {
    common::store().await.health().await.unwrap();
    let closed = common::connection("http://127.0.0.1:9")
        .load()
        .await
        .unwrap();
    let err = SecretsManagerStore::builder(&closed)
        .build()
        .unwrap()
        .health()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn kms_by_alias_and_wrong_context_is_a_clear_error() {
    let kms = common::kms_provider().await;
    let alias = format!("alias/{}", common::unique("kms-test"));
    kms.client()
        .create_alias()
        .alias_name(&alias)
        .target_key_id(kms.key_id())
        .send()
        .await
        .unwrap();
    let by_alias = AwsKmsProvider::from_client(kms.client().clone(), alias).unwrap();
    let ctx = EncryptionContext::new().with("service", "payments");
    let ct = by_alias.encrypt(&"card key".into(), &ctx).await.unwrap();
    // Decrypts through the key id too: the ciphertext names its key.
    assert_eq!(
        kms.decrypt(&ct, &ctx).await.unwrap().expose_secret(),
        b"card key"
    );

    let other = EncryptionContext::new().with("service", "billing");
    let err = kms.decrypt(&ct, &other).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert!(err.message().contains("encryption context"), "{err}");
    assert!(!format!("{err:?}").contains("card key"));

    let dk = by_alias.generate_data_key(&ctx).await.unwrap();
    assert_eq!(dk.plaintext.len(), 32);
    assert_eq!(
        kms.decrypt(&dk.ciphertext, &ctx).await.unwrap(),
        dk.plaintext
    );

    let too_big = SecretValue::from(vec![0u8; kms_backend_aws::MAX_KMS_PLAINTEXT + 1]);
    let err = kms.encrypt(&too_big, &ctx).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

#[tokio::test]
async fn envelope_with_another_context_does_not_open() {
    let kms: Arc<dyn CryptoProvider> = Arc::new(common::kms_provider().await);
    let backing = Arc::new(MemoryStore::new());
    let sealed = |service: &str| {
        StoreBuilder::new(backing.clone())
            .layer(
                EnvelopeLayer::new(kms.clone())
                    .context(EncryptionContext::new().with("service", service)),
            )
            .build()
    };
    let k = key("db/password");
    sealed("payments")
        .store(&k, "hunter2".into())
        .await
        .unwrap();
    assert_eq!(
        sealed("payments")
            .get(&k)
            .await
            .unwrap()
            .value
            .expose_secret(),
        b"hunter2"
    );
    let raw = backing.get(&k).await.unwrap();
    assert!(
        !raw.value
            .expose_secret()
            .windows(7)
            .any(|w| w == b"hunter2")
    );
    let err = sealed("billing").get(&k).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
}

/// A KMS key or alias that does not exist is the provider's configuration, never the
/// `NotFound` that means "this secret does not exist" (which a cache above would remember).
#[tokio::test]
async fn a_missing_kms_key_is_configuration_never_not_found() {
    let kms = common::kms_provider().await;
    let ctx = EncryptionContext::new();
    for missing in [
        "11111111-2222-3333-4444-555555555555".to_owned(),
        format!("alias/{}", common::unique("no-such-alias")),
    ] {
        let provider = AwsKmsProvider::from_client(kms.client().clone(), &missing).unwrap();
        let errs = [
            provider.encrypt(&"x".into(), &ctx).await.unwrap_err(),
            provider.generate_data_key(&ctx).await.unwrap_err(),
        ];
        for err in errs {
            assert_eq!(err.kind(), ErrorKind::Configuration, "{missing}: {err}");
            assert_eq!(err.backend(), Some("aws_kms"));
            assert!(err.message().contains(&missing), "names the key: {err}");
        }
    }
    // Disabled keys and keys pending deletion: moto encrypts with them anyway, so their
    // mapping is tested against AWS's answers in mock_errors.rs.
}

/// The envelope over Secrets Manager with a provider whose alias does not exist: `get` of an
/// existing secret and `store` are `Configuration`, not the secret's `NotFound`.
#[tokio::test]
async fn envelope_with_a_missing_kms_alias_is_configuration() {
    let good: Arc<dyn CryptoProvider> = Arc::new(common::kms_provider().await);
    let ns = common::unique("env-missing-kms");
    let sm = namespaced(&common::config().await, &ns).build().unwrap();
    let k = key("db/password");
    StoreBuilder::new(sm.clone())
        .layer(EnvelopeLayer::new(good))
        .build()
        .store(&k, "hunter2".into())
        .await
        .unwrap();

    let config = common::config().await;
    let missing =
        AwsKmsProvider::new(&config, format!("alias/{}", common::unique("gone"))).unwrap();
    let broken = StoreBuilder::new(sm.clone())
        .layer(EnvelopeLayer::new(Arc::new(missing)))
        .build();
    let err = broken.get(&k).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "get: {err}");
    assert!(!err.is_not_found());
    let err = broken.store(&k, "new".into()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "store: {err}");
    let err = broken.store(&key("fresh"), "new".into()).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Configuration,
        "store of a new key: {err}"
    );
    sm.remove(&k).await.unwrap();
}

/// A JSON SecretString written by another tool (`{"username":…,"password":…}`): one field read
/// into a zeroizing `SecretValue`, with the same API as for Vault (`KeyStoreExt::get_field`).
#[tokio::test]
async fn a_field_of_a_json_secret_string_is_read_as_a_secret_value() {
    let config = common::config().await;
    let ns = common::unique("json");
    let store = namespaced(&config, &ns).build().unwrap();
    sm_client(&config)
        .create_secret()
        .name(format!("{ns}/app/db"))
        .secret_string(r#"{"username":"app","password":"s3cr\"et","port":5432,"tls":{"on":true}}"#)
        .send()
        .await
        .unwrap();
    let password: SecretValue = store.get_field("app/db", "password").await.unwrap();
    assert_eq!(
        password.expose_secret(),
        b"s3cr\"et",
        "a string field's text, unescaped"
    );
    assert_eq!(
        store
            .get_field("app/db", "username")
            .await
            .unwrap()
            .expose_secret(),
        b"app"
    );
    assert_eq!(
        store
            .get_field("app/db", "port")
            .await
            .unwrap()
            .expose_secret(),
        b"5432"
    );
    assert_eq!(
        store
            .get_field("app/db", "tls")
            .await
            .unwrap()
            .expose_secret(),
        br#"{"on":true}"#
    );
    let err = store.get_field("app/db", "missing").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert!(
        !err.message().contains("s3cr"),
        "no value in the message: {err}"
    );
    let err = store
        .get_field("app/nothing", "password")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    store.remove(&key("app/db")).await.unwrap();
}

/// Secrets named by other tools with AWS's other name characters (`_+=.@-/`) are readable,
/// listable and removable.
#[tokio::test]
async fn names_with_aws_characters_written_by_another_tool_are_readable() {
    let config = common::config().await;
    let ns = common::unique("charset");
    let store = namespaced(&config, &ns).build().unwrap();
    let raw = sm_client(&config);
    let names = [
        "db@prod",
        "api+key",
        "team=payments/token",
        "user@example.com",
        "a_b.c-d",
    ];
    for (i, n) in names.iter().enumerate() {
        raw.create_secret()
            .name(format!("{ns}/{n}"))
            .secret_string(format!("value-{i}"))
            .send()
            .await
            .unwrap();
    }
    for (i, n) in names.iter().enumerate() {
        let read = store.get(&key(n)).await.unwrap();
        assert_eq!(
            read.value.expose_secret(),
            format!("value-{i}").as_bytes(),
            "{n}"
        );
    }
    let mut listed = store.list(&KeyPrefix::all()).await.unwrap();
    listed.sort();
    let mut want: Vec<KeyName> = names.iter().map(|n| key(n)).collect();
    want.sort();
    assert_eq!(listed, want);
    for n in names {
        store.remove(&key(n)).await.unwrap();
    }
}
