#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod auth;
mod builder;
mod client;
mod config_path;
mod encoding;
mod engine;
mod error_map;
mod mount;
mod store;
mod transit;

pub use auth::VaultAuth;
pub use builder::{
    DEFAULT_ADDRESS, DEFAULT_CONSISTENCY_WAIT, DEFAULT_PROBE_INTERVAL, VaultClientBuilder,
    VaultStoreBuilder,
};
pub use client::VaultClient;
pub use engine::KvVersion;
pub use store::{MAX_VALUE_LEN, RemoveMode, VaultStore};
pub use transit::VaultTransitProvider;

/// The backend label: what [`VaultStore`]'s [`KeyStore::backend`](kms_core::KeyStore::backend)
/// returns, and the backend named on every error this crate makes (and so in metrics and logs).
pub const BACKEND: &str = "vault";
