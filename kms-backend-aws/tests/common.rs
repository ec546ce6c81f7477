//! Shared helpers for the tests against the moto server (scripts/peers/moto.sh).
#![allow(dead_code)]

use kms_backend_aws::sdk::aws_config::SdkConfig;
use kms_backend_aws::{AwsConnection, AwsKmsProvider, Deletion, SecretsManagerStore};

/// The emulator's address; fails loudly when the peer is not running.
pub fn endpoint() -> String {
    std::env::var("KMS_TEST_AWS_ENDPOINT").expect(
        "KMS_TEST_AWS_ENDPOINT is not set: start moto with scripts/test \
         (scripts/peers/moto.sh) or export KMS_TEST_AWS_ENDPOINT=http://127.0.0.1:5000",
    )
}

/// A connection to `url` with the static test credentials moto accepts.
pub fn connection(url: &str) -> AwsConnection {
    AwsConnection::new()
        .region("us-east-1")
        .endpoint_url(url)
        .static_credentials("testing", "testing".to_owned(), None)
}

/// The SDK config for the emulator.
pub async fn config() -> SdkConfig {
    connection(&endpoint()).load().await.unwrap()
}

/// A Secrets Manager store on the emulator that force-deletes (so names can be reused).
pub async fn store() -> SecretsManagerStore {
    SecretsManagerStore::builder(&config().await)
        .deletion(Deletion::Force)
        .unwrap()
        .build()
        .unwrap()
}

/// A fresh KMS key on the emulator, and a provider using it by id.
pub async fn kms_provider() -> AwsKmsProvider {
    let config = config().await;
    let client = kms_backend_aws::sdk::aws_sdk_kms::Client::new(&config);
    let key = client
        .create_key()
        .description("kms-backend-aws test key")
        .send()
        .await
        .expect("CreateKey on the emulator");
    let id = key.key_metadata().unwrap().key_id().to_owned();
    AwsKmsProvider::from_client(client, id).unwrap()
}

/// A name unique to this process and call (not every test binary uses it).
#[allow(unused_imports)]
pub use kms_core::conformance::unique_name as unique;
