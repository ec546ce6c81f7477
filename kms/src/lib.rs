#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod config;
pub mod duration;
mod env;
mod error;
#[cfg(feature = "metrics")]
mod metrics_registry;
mod scalar;
mod secret_ref;
mod tables;
mod uri;

use std::sync::Arc;

pub use config::{Config, Opener, Stack, StoreConfig};
pub use kms_core::*;
#[cfg(feature = "metrics")]
pub use metrics_registry::MetricsRegistry;
pub use secret_ref::SecretRef;

/// kms-core, the trait crate every backend and layer builds on.
pub use kms_core as core;

/// The AWS Secrets Manager backend and KMS provider (feature `aws`).
#[cfg(feature = "aws")]
pub use kms_backend_aws as aws;
/// The OS keyring backend (feature `keyring`).
#[cfg(feature = "keyring")]
pub use kms_backend_keyring as keyring;
/// The Vault / OpenBao backend and Transit provider (feature `vault`).
#[cfg(feature = "vault")]
pub use kms_backend_vault as vault;
/// The moka-based cache layer (feature `cache`).
#[cfg(feature = "cache")]
pub use kms_cache as cache;
/// Prometheus metrics, spans, audit events and health reports (feature `metrics`).
#[cfg(feature = "metrics")]
pub use kms_metrics as metrics;

/// Opens the store a URI describes, with the layers its query configures
/// (`vault+https://vault.example:8200/secret?auth.token=env:VAULT_TOKEN&cache.ttl=5m`).
/// Metrics, if configured, go to [`MetricsRegistry::global`]; use an [`Opener`] for another
/// registry or for the cache, breaker and metrics handles.
///
/// # Errors
///
/// [`Configuration`](ErrorKind::Configuration) naming the offending key for an unsupported
/// scheme, an unknown or duplicate query key, a bad value, a missing required option, or a
/// backend or layer whose cargo feature is not compiled in; whatever the backend answers when
/// it is reached at build (a Vault login, a keyring that cannot be opened).
pub async fn open(uri: &str) -> Result<Arc<dyn KeyStore>> {
    Opener::new().open(uri).await.map(Stack::into_store)
}

/// The workspace README's usage snippets, run as doctests of this crate so they cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct RootReadme;
