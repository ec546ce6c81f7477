//! [`KeyringStoreBuilder`]: service name, backend and lock file of a [`KeyringStore`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use std::time::Duration;

use kms_core::{Capabilities, Error, ErrorKind, Result};

use crate::backend::{KEYUTILS_MAX_VALUE_LEN, KeyringBackend};
use crate::offload::Offload;
use crate::store::{Inner, KeyringStore};
use crate::{BACKEND, KeyutilsAccess, KeyutilsScope};

impl KeyringStore {
    /// Starts configuring a store for entries under `service`.
    pub fn builder(service: impl Into<String>) -> KeyringStoreBuilder {
        KeyringStoreBuilder::new(service)
    }
}

/// Configures a [`KeyringStore`]. Made by [`KeyringStore::builder`].
///
/// Holds no secret; its `Debug` shows the service, backend, lock file, scope, access and
/// timeouts.
#[derive(Clone)]
pub struct KeyringStoreBuilder {
    service: String,
    backend: KeyringBackend,
    lock_file: Option<PathBuf>,
    scope: KeyutilsScope,
    access: KeyutilsAccess,
    timeout: Duration,
    lock_timeout: Duration,
    max_abandoned_calls: usize,
}

/// The default bound on one keyring operation: 5 seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default bound on the wait for the index lock file: 10 seconds.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// The default number of abandoned (timed-out, still running) keyring calls a store tolerates
/// before failing new calls at once: 8.
pub const DEFAULT_MAX_ABANDONED_CALLS: usize = 8;

impl KeyringStoreBuilder {
    fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            backend: KeyringBackend::PlatformDefault,
            lock_file: None,
            scope: KeyutilsScope::default(),
            access: KeyutilsAccess::default(),
            timeout: DEFAULT_TIMEOUT,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            max_abandoned_calls: DEFAULT_MAX_ABANDONED_CALLS,
        }
    }

    /// The credential store to use (default: [`KeyringBackend::PlatformDefault`]).
    #[must_use]
    pub fn backend(mut self, backend: KeyringBackend) -> Self {
        self.backend = backend;
        self
    }

    /// Where the kernel keyring ([`KeyringBackend::KeyUtils`]) keeps keys: the session
    /// keyring (the default) or the uid's persistent keyring, which outlives logout and is
    /// reachable from every session of the uid. See [`KeyutilsScope`]. Other backends ignore it.
    #[must_use]
    pub fn keyutils_scope(mut self, scope: KeyutilsScope) -> Self {
        self.scope = scope;
        self
    }

    /// Who may use the kernel keyring's ([`KeyringBackend::KeyUtils`]) keys: their owning uid
    /// only (the default, [`KeyutilsAccess::Uid`]), or, as the kernel's defaults have it,
    /// whoever possesses them ([`KeyutilsAccess::Possessor`]), which includes a process that
    /// switched to another uid keeping the session keyring. See [`KeyutilsAccess`] for what
    /// each costs. Other backends ignore it.
    #[must_use]
    pub fn keyutils_access(mut self, access: KeyutilsAccess) -> Self {
        self.access = access;
        self
    }

    /// The bound on each keyring operation (and on opening the store), excluding the wait for
    /// the index lock (default [`DEFAULT_TIMEOUT`], 5 s). A call that does not finish in time
    /// fails with [`ErrorKind::Timeout`]; the Secret Service backend also bounds each D-Bus
    /// call by it, so a stuck daemon releases the calling thread.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The bound on the wait for the index lock file during `store`/`remove` (default
    /// [`DEFAULT_LOCK_TIMEOUT`], 10 s); longer waits fail with [`ErrorKind::Timeout`] having
    /// written nothing.
    #[must_use]
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// How many keyring calls whose callers gave up (timeout, dropped future) may still be
    /// running on their threads before new calls fail at once with
    /// [`ErrorKind::Unavailable`] (default [`DEFAULT_MAX_ABANDONED_CALLS`]). Bounds the threads
    /// a hung platform can hold.
    #[must_use]
    pub fn max_abandoned_calls(mut self, max: usize) -> Self {
        self.max_abandoned_calls = max;
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

    /// Validates the settings and opens the credential store (on a blocking thread, within
    /// the [`timeout`](Self::timeout): the Secret Service connects to D-Bus). Works on any
    /// executor, Tokio or not.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] for an empty service name, a zero timeout or abandoned-call
    /// limit, when no native store is compiled in, or, on the kernel keyring, for a service
    /// name that contains `@` or is longer than [`KEYUTILS_MAX_SERVICE_LEN`] bytes; [`ErrorKind::Unavailable`] when the
    /// platform store cannot be reached; [`ErrorKind::Timeout`] when it does not answer in time.
    pub async fn build(self) -> Result<KeyringStore> {
        self.validate()?;
        let offload = Offload::new(self.max_abandoned_calls);
        let backend = self.backend.clone().resolve()?;
        validate_service_for(&backend, &self.service)?;
        let (timeout, scope, access) = (self.timeout, self.scope, self.access);
        let opened = {
            let backend = backend.clone();
            offload
                .run("opening the keyring", timeout, move |_| {
                    backend.open(timeout, scope, access)
                })
                .await?
        };
        Ok(self.finish(backend, opened, offload))
    }

    /// [`build`](Self::build) for synchronous code: blocks the calling thread until the store
    /// is open (at most the [`timeout`](Self::timeout)). Needs no Tokio runtime, and the store
    /// it returns works on any executor (e.g. `futures::executor::block_on`); never call it on
    /// an async executor thread.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    pub fn build_blocking(self) -> Result<KeyringStore> {
        futures_lite::future::block_on(self.build())
    }

    fn validate(&self) -> Result<()> {
        let config = |what: &str| {
            Err(Error::new(ErrorKind::Configuration, what.to_owned()).with_backend(BACKEND))
        };
        if self.service.is_empty() || self.service.chars().any(char::is_control) {
            return config(
                "the keyring service name must be non-empty and free of control characters",
            );
        }
        if self.timeout.is_zero() {
            return config("the keyring timeout must be greater than zero");
        }
        if self.max_abandoned_calls == 0 {
            return config("max_abandoned_calls must be at least 1");
        }
        Ok(())
    }

    fn finish(
        self,
        backend: KeyringBackend,
        store: Arc<keyring_core::CredentialStore>,
        offload: Offload,
    ) -> KeyringStore {
        let lock_file = self
            .lock_file
            .unwrap_or_else(|| default_lock_file(&self.service));
        let capabilities = Capabilities::new()
            .with_list(true)
            .with_versions(false)
            .with_max_value_len(backend.max_value_len());
        KeyringStore::new(Inner {
            service: self.service,
            label: backend.label(),
            store,
            lock_file,
            capabilities,
            index_budget: backend.max_value_len().min(KEYUTILS_MAX_VALUE_LEN),
            timeout: self.timeout,
            lock_timeout: self.lock_timeout,
            offload,
        })
    }
}

/// The longest service name of the kernel keyring: a key's description
/// `keyring:<name>@<service>` may hold at most 4095 bytes (`KEY_MAX_DESC_SIZE`, `add_key(2)`),
/// and key names take up to [`MAX_KEY_NAME_LEN`](kms_core::MAX_KEY_NAME_LEN) of them.
pub const KEYUTILS_MAX_SERVICE_LEN: usize =
    4095 - "keyring:".len() - kms_core::MAX_KEY_NAME_LEN - "@".len();

/// The service-name rules of one backend. On the kernel keyring an entry is found by its
/// description `keyring:<name>@<service>` alone, and key names may contain `@`: a service with
/// `@` would share descriptions with another service (`keyring:a@b@c` is key `a@b` of `c` and
/// key `a` of `b@c`), so it is refused; so is a service whose descriptions the kernel rejects.
fn validate_service_for(backend: &KeyringBackend, service: &str) -> Result<()> {
    #[cfg(all(feature = "keyutils", target_os = "linux"))]
    if matches!(backend, KeyringBackend::KeyUtils) {
        let config = |why: String| {
            Err(Error::new(
                ErrorKind::Configuration,
                format!("the keyring service name is not usable on the kernel keyring: {why}"),
            )
            .with_backend(BACKEND))
        };
        if service.contains('@') {
            return config(
                "it contains '@', which would make its keys' descriptions \
                 (keyring:<name>@<service>) equal to those of another service"
                    .into(),
            );
        }
        if service.len() > KEYUTILS_MAX_SERVICE_LEN {
            return config(format!(
                "it is {} bytes long, the longest is {KEYUTILS_MAX_SERVICE_LEN} \
                 (KEYUTILS_MAX_SERVICE_LEN: key descriptions hold at most 4095 bytes)",
                service.len()
            ));
        }
    }
    let _ = (backend, service);
    Ok(())
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
            .field("keyutils_scope", &self.scope)
            .field("keyutils_access", &self.access)
            .field("timeout", &self.timeout)
            .field("lock_timeout", &self.lock_timeout)
            .field("max_abandoned_calls", &self.max_abandoned_calls)
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

    /// The refusals read as one sentence: no run of spaces where a string literal continues
    /// on the next line.
    #[cfg(all(feature = "keyutils", target_os = "linux"))]
    #[test]
    fn service_name_refusals_have_no_runs_of_spaces() {
        for service in ["a@b".to_owned(), "s".repeat(KEYUTILS_MAX_SERVICE_LEN + 1)] {
            let e = validate_service_for(&KeyringBackend::KeyUtils, &service).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Configuration, "{e}");
            assert!(!e.message().contains("  "), "{e}");
        }
    }
}
