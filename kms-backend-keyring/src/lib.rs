#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod access;
mod backend;
mod builder;
mod error_map;
pub mod index;
#[cfg(all(feature = "keyutils", target_os = "linux"))]
mod keyutils;
mod lock;
mod offload;
mod scope;
#[cfg(all(
    feature = "secret-service",
    any(target_os = "linux", target_os = "freebsd", target_os = "openbsd")
))]
mod secret_service_store;
mod store;

pub use access::KeyutilsAccess;
pub use backend::{KEYUTILS_MAX_VALUE_LEN, KeyringBackend};
pub use builder::{
    DEFAULT_LOCK_TIMEOUT, DEFAULT_MAX_ABANDONED_CALLS, DEFAULT_TIMEOUT, KEYUTILS_MAX_SERVICE_LEN,
    KeyringStoreBuilder,
};
pub use error_map::to_error;
pub use index::{INDEX_ACCOUNT, MAX_INDEX_SHARDS};
#[cfg(all(feature = "keyutils", target_os = "linux"))]
pub use keyutils::description as keyutils_description;
pub use scope::KeyutilsScope;
pub use store::KeyringStore;

/// The [`KeyStore::backend`](kms_core::KeyStore::backend) label of this crate's store.
pub const BACKEND: &str = "keyring";
