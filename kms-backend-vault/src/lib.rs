#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod auth;
mod builder;
mod client;
mod config_path;
mod encoding;
mod error_map;
mod mount;
mod renew;
mod store;
mod transit;

pub use auth::VaultAuth;
pub use builder::{DEFAULT_ADDRESS, VaultClientBuilder};
pub use client::VaultClient;
pub use store::{KvVersion, MAX_VALUE_LEN, RemoveMode, VaultStore, VaultStoreBuilder};
pub use transit::VaultTransitProvider;
