#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Vocabulary: what every store, layer and caller names.
mod error;
mod health_signal;
mod json_field;
mod key_name;
mod memory;
mod one_line;
mod secret;
mod store;

// Composition and the machinery behind it; each module's page explains one idea.
pub mod crypto;
pub mod layers;
pub mod rotation;
pub mod sharded;
pub mod write;

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "envelope")]
pub mod envelope;

/// [`FaultStore`](fault::FaultStore): a test decorator that injects errors and latency.
#[cfg(feature = "testing")]
pub mod fault {
    pub use crate::layers::fault::{FaultHandle, FaultStore};
}

#[cfg(feature = "envelope")]
pub use crypto::local::LocalKeyProvider;
pub use crypto::{CryptoOperation, CryptoProvider, DataKey, EncryptionContext};
pub use error::{Error, ErrorKind, Result};
pub use health_signal::HealthSignal;
pub use json_field::json_field;
pub use key_name::{KeyName, KeyPrefix, MAX_KEY_NAME_LEN};
pub use layers::breaker::state::CircuitState;
pub use layers::breaker::{CircuitBreaker, CircuitBreakerHandle, CircuitBreakerLayer};
pub use layers::builder::StoreBuilder;
pub use layers::failover::handle::FailoverHandle;
pub use layers::failover::layer::FailoverLayer;
pub use layers::failover::store::Failover;
pub use layers::failover::target::FailoverTarget;
pub use layers::floors::VersionFloors;
pub use layers::layer::Layer;
pub use layers::monotonic::{Monotonic, MonotonicLayer};
pub use layers::retry::{Backoff, Retry, RetryLayer};
pub use layers::timeout::{Timeout, TimeoutLayer};
pub use layers::validate::{Validate, ValidateLayer};
pub use memory::{DEFAULT_MAX_VERSIONS, MemoryStore, MemoryStoreBuilder};
pub use one_line::one_line;
pub use secret::{SecretMeta, SecretValue, StoredSecret};
pub use store::{
    Capabilities, DEFAULT_MAX_VALUE_LEN, KeyStore, KeyStoreExt, Operation, PreviousVersion,
    check_value_len,
};
pub use write::context::{AttemptGuard, CallContext};
pub use write::order::WriteOrder;

/// Re-exported so implementors write `#[kms_core::async_trait]` without a direct dependency.
pub use async_trait::async_trait;
