#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod auth;
mod client;
mod encoding;
mod error_map;
mod store;
mod transit;

pub use auth::VaultAuth;
pub use client::{VaultClient, VaultClientBuilder};
pub use store::{KvVersion, MAX_VALUE_LEN, RemoveMode, VaultStore, VaultStoreBuilder};
pub use transit::VaultTransitProvider;
