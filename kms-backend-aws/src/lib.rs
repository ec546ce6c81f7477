#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod connection;
mod error_map;
mod kms;
mod namespace;
mod repeat_attempt;
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
