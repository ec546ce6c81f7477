#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod breaker;
mod circuit_state;
mod crypto;
mod error;
mod json_field;
mod key_name;
pub mod layer;
mod memory;
pub mod retry;
mod secret;
pub mod sharded;
mod store;
pub mod timeout;
pub mod write_id;
pub mod write_order;

#[cfg(feature = "conformance")]
pub mod cancellation;
#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "envelope")]
pub mod envelope;
#[cfg(feature = "testing")]
pub mod fault;
#[cfg(feature = "envelope")]
mod local_provider;

pub use breaker::{CircuitBreaker, CircuitBreakerHandle, CircuitBreakerLayer};
pub use circuit_state::CircuitState;
pub use crypto::{CryptoOperation, CryptoProvider, DataKey, EncryptionContext};
pub use error::{Error, ErrorKind, Result};
pub use json_field::json_field;
pub use key_name::{KeyName, KeyPrefix, MAX_KEY_NAME_LEN};
pub use layer::{Layer, StoreBuilder, Validate, ValidateLayer};
#[cfg(feature = "envelope")]
pub use local_provider::LocalKeyProvider;
pub use memory::{DEFAULT_MAX_VERSIONS, MemoryStore, MemoryStoreBuilder};
pub use retry::{Retry, RetryLayer};
pub use secret::{SecretMeta, SecretValue, StoredSecret};
pub use store::{
    Capabilities, DEFAULT_MAX_VALUE_LEN, KeyStore, KeyStoreExt, Operation, check_value_len,
};
pub use timeout::{Timeout, TimeoutLayer};
pub use write_order::WriteOrder;

/// Re-exported so implementors write `#[kms_core::async_trait]` without a direct dependency.
pub use async_trait::async_trait;
