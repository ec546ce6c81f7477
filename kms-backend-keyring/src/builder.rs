//! [`KeyringStoreBuilder`]: service name, backend and lock file of a [`KeyringStore`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use kms_core::{Capabilities, Error, ErrorKind, Result};

use crate::backend::KeyringBackend;
use crate::store::{Inner, KeyringStore};
use crate::{BACKEND, blocking};

/// Configures a [`KeyringStore`]. Made by [`KeyringStore::builder`].
///
/// Holds no secret; its `Debug` shows the service, backend and lock file.
#[derive(Clone)]
pub struct KeyringStoreBuilder {
    service: String,
    backend: KeyringBackend,
    lock_file: Option<PathBuf>,
}

impl KeyringStoreBuilder {
    pub(crate) fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            backend: KeyringBackend::PlatformDefault,
            lock_file: None,
        }
    }

    /// The credential store to use (default: [`KeyringBackend::PlatformDefault`]).
    #[must_use]
    pub fn backend(mut self, backend: KeyringBackend) -> Self {
        self.backend = backend;
        self
    }

    /// The lock file that serializes index updates (default:
    /// `$XDG_RUNTIME_DIR/kms-keyring-<service>.lock`, or the temp dir when that is unset).
    /// Every process sharing a service must use the same file; see
    /// [the index guarantee](crate::index).
    #[must_use]
    pub fn lock_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.lock_file = Some(path.into());
        self
    }

    /// Opens the credential store (on a blocking thread: the Secret Service connects to D-Bus).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] for an empty service name or when no native store is
    /// compiled in; [`ErrorKind::Unavailable`] when the platform store cannot be reached.
    pub async fn build(self) -> Result<KeyringStore> {
        blocking(move || self.build_blocking()).await
    }

    /// [`build`](Self::build) on the calling thread, for synchronous code: it may block on
    /// D-Bus, so never call it on an async executor thread.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    pub fn build_blocking(self) -> Result<KeyringStore> {
        if self.service.is_empty() || self.service.chars().any(char::is_control) {
            return Err(Error::new(
                ErrorKind::Configuration,
                "the keyring service name must be non-empty and free of control characters",
            )
            .with_backend(BACKEND));
        }
        let backend = self.backend.resolve()?;
        let lock_file = self
            .lock_file
            .unwrap_or_else(|| default_lock_file(&self.service));
        let store = backend.open()?;
        let capabilities = Capabilities::new()
            .with_list(true)
            .with_versions(false)
            .with_max_value_len(backend.max_value_len());
        Ok(KeyringStore {
            inner: Arc::new(Inner {
                service: self.service,
                label: backend.label(),
                store,
                lock_file,
                capabilities,
            }),
        })
    }
}

/// `<$XDG_RUNTIME_DIR or the temp dir>/kms-keyring-<service, unsafe characters as '_'>.lock`.
fn default_lock_file(service: &str) -> PathBuf {
    let safe: String = service
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    // The per-user runtime directory (mode 0700) keeps other users from holding the lock.
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    dir.join(format!("kms-keyring-{safe}.lock"))
}

impl fmt::Debug for KeyringStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringStoreBuilder")
            .field("service", &self.service)
            .field("backend", &self.backend)
            .field("lock_file", &self.lock_file)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_lock_file_names_only_safe_characters() {
        let path = default_lock_file("my app/../x");
        assert_eq!(
            path.file_name().unwrap().to_str().unwrap(),
            "kms-keyring-my_app_.._x.lock"
        );
    }
}
