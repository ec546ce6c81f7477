//! AWS backends for kms-core: a [`KeyStore`](kms_core::KeyStore) over **AWS Secrets Manager**
//! ([`SecretsManagerStore`]) and a [`CryptoProvider`](kms_core::CryptoProvider) over
//! **AWS KMS** ([`AwsKmsProvider`]) for kms-core's envelope-encryption decorator.
//!
//! ```no_run
//! # async fn demo() -> kms_core::Result<()> {
//! use kms_backend_aws::{AwsConnection, SecretsManagerStore};
//! use kms_core::{KeyStore, KeyStoreExt};
//!
//! // Region and credentials from the default chain (env, profile, SSO, web identity, IMDS);
//! // `.endpoint_url("http://127.0.0.1:5000")` for an emulator or a VPC endpoint.
//! let config = AwsConnection::new().load().await?;
//! let store = SecretsManagerStore::builder(&config)
//!     .namespace("payments/prod")?
//!     .build()?;
//! store.put("db/password", "s3cr3t").await?;
//! let secret = store.get_value("db/password").await?;
//! # Ok(()) }
//! ```
//!
//! # Choices
//!
//! - **One TLS stack.** The SDK crates are built with `default-https-client` (hyper 1 +
//!   rustls 0.23 on aws-lc-rs), the stack reqwest uses for the Vault backend, and without
//!   their default `rustls` feature, which would add the legacy hyper 0.14 / rustls 0.21
//!   client.
//! - **One retry loop.** [`AwsConnection`] turns the SDK's own retries off, so kms-core's
//!   `RetryLayer` is the only one (with its budget and the breaker seeing every attempt).
//! - **Errors mapped in one function** (`error_map.rs`): every SDK failure becomes a
//!   [`kms_core::Error`] with a kind the retry layer, the breaker and the metrics act on, and
//!   the AWS error code; never a value. See [`SecretsManagerStore`] and [`AwsKmsProvider`]
//!   for what each AWS answer becomes.

mod connection;
mod error_map;
mod kms;
mod namespace;
mod request_token;
mod runtime;
mod secrets_manager;
mod secrets_manager_builder;
mod version_stage;

pub use connection::AwsConnection;
pub use kms::{AwsKmsProvider, MAX_KMS_PLAINTEXT};
pub use secrets_manager::SecretsManagerStore;
pub use secrets_manager_builder::{Deletion, SecretsManagerStoreBuilder};
pub use version_stage::VersionStage;

/// The AWS SDK crates this backend is built on, for services that configure clients
/// themselves.
pub mod sdk {
    pub use aws_config;
    pub use aws_sdk_kms;
    pub use aws_sdk_secretsmanager;
}
