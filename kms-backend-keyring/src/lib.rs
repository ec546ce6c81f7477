#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod backend;
mod builder;
mod error_map;
pub mod index;
mod store;

pub use backend::{KEYUTILS_MAX_VALUE_LEN, KeyringBackend};
pub use builder::KeyringStoreBuilder;
pub use error_map::map_error;
pub use index::INDEX_ACCOUNT;
pub use store::KeyringStore;

/// The [`KeyStore::backend`](kms_core::KeyStore::backend) label of this crate's store.
pub const BACKEND: &str = "keyring";

/// Runs a blocking keyring call on tokio's blocking pool, never on the executor.
pub(crate) async fn blocking<T, F>(f: F) -> kms_core::Result<T>
where
    F: FnOnce() -> kms_core::Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        kms_core::Error::new(
            kms_core::ErrorKind::Backend,
            format!("the blocking keyring task failed: {e}"),
        )
        .with_backend(BACKEND)
    })?
}
