#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod builder;
mod client;
mod connection;
mod deletion;
mod error_map;
mod kms;
mod namespace;
mod repeat_attempt;
mod request_token;
mod rotation_schedule;
mod runtime;
mod store;
mod version_stage;

pub use builder::SecretsManagerStoreBuilder;
pub use connection::AwsConnection;
pub use deletion::Deletion;
pub use kms::{AwsKmsProvider, MAX_KMS_PLAINTEXT};
pub use store::{CAS_STAGE, SecretsManagerStore};
pub use version_stage::VersionStage;

/// The [`KeyStore::backend`](kms_core::KeyStore::backend) label of [`SecretsManagerStore`]:
/// the backend its errors carry and its metrics are labelled with (also the label of the
/// configuration errors of [`AwsConnection`]).
pub const BACKEND: &str = "aws";

/// The [`CryptoProvider::provider`](kms_core::CryptoProvider::provider) label of
/// [`AwsKmsProvider`]: the backend its errors carry and its metrics are labelled with.
pub const KMS_PROVIDER: &str = "aws_kms";

/// The AWS SDK crates this backend is built on, for services that configure clients
/// themselves.
pub mod sdk {
    pub use aws_config;
    pub use aws_sdk_kms;
    pub use aws_sdk_secretsmanager;
}
