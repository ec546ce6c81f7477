//! Which OS credential store a [`KeyringStore`](crate::KeyringStore) talks to.

use std::fmt;
use std::sync::Arc;

use keyring_core::CredentialStore;
use kms_core::{DEFAULT_MAX_VALUE_LEN, Error, ErrorKind, Result};

use crate::error_map::to_error;

/// The largest payload of a kernel `user` key (`KEYCTL_MAX_PAYLOAD` for user keys is 32767).
///
/// Non-root users are also limited by the per-user quota in `/proc/sys/kernel/keys/maxbytes`
/// (20000 bytes by default), which covers every key the user holds.
pub const KEYUTILS_MAX_VALUE_LEN: usize = 32_767;

/// The credential store behind a [`KeyringStore`](crate::KeyringStore).
///
/// Each native variant exists only when its cargo feature is on (and the target OS has the
/// store): `keyutils` and `secret-service` on Linux, `apple-native` on macOS,
/// `windows-native` on Windows.
#[derive(Clone)]
#[non_exhaustive]
pub enum KeyringBackend {
    /// The platform default: the macOS keychain, the Windows Credential Manager, the Secret
    /// Service on Linux when enabled, else the kernel keyring.
    PlatformDefault,
    /// The Linux kernel keyring; where keys go and how long they live is the builder's
    /// [`keyutils_scope`](crate::KeyringStoreBuilder::keyutils_scope) (default: the session
    /// keyring of the calling process), who may use them its
    /// [`keyutils_access`](crate::KeyringStoreBuilder::keyutils_access) (default: the owning
    /// uid only).
    #[cfg(all(feature = "keyutils", target_os = "linux"))]
    KeyUtils,
    /// The freedesktop Secret Service over D-Bus (GNOME Keyring, KWallet).
    #[cfg(all(
        feature = "secret-service",
        any(target_os = "linux", target_os = "freebsd", target_os = "openbsd")
    ))]
    SecretService,
    /// The macOS keychain.
    #[cfg(all(feature = "apple-native", target_os = "macos"))]
    AppleKeychain,
    /// The Windows Credential Manager.
    #[cfg(all(feature = "windows-native", windows))]
    WindowsCredentialManager,
    /// Any `keyring_core` credential store, e.g. `keyring_core::mock::Store` in tests, with the
    /// largest value it accepts.
    Custom {
        /// The store.
        store: Arc<CredentialStore>,
        /// The largest value `store` accepts, in bytes.
        max_value_len: usize,
    },
}

impl KeyringBackend {
    /// A short label: `"keyutils"`, `"secret-service"`, `"apple-keychain"`, `"windows"`,
    /// `"custom"` or `"default"`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::PlatformDefault => "default",
            #[cfg(all(feature = "keyutils", target_os = "linux"))]
            Self::KeyUtils => "keyutils",
            #[cfg(all(
                feature = "secret-service",
                any(target_os = "linux", target_os = "freebsd", target_os = "openbsd")
            ))]
            Self::SecretService => "secret-service",
            #[cfg(all(feature = "apple-native", target_os = "macos"))]
            Self::AppleKeychain => "apple-keychain",
            #[cfg(all(feature = "windows-native", windows))]
            Self::WindowsCredentialManager => "windows",
            Self::Custom { .. } => "custom",
        }
    }

    /// Resolves [`PlatformDefault`](Self::PlatformDefault) to the concrete backend for this
    /// build, or fails with [`ErrorKind::Configuration`] if no native store is compiled in.
    pub fn resolve(self) -> Result<Self> {
        if !matches!(self, Self::PlatformDefault) {
            return Ok(self);
        }
        // The first native store compiled in, in priority order.
        let native: Option<Self> = None;
        #[cfg(all(feature = "apple-native", target_os = "macos"))]
        let native = native.or(Some(Self::AppleKeychain));
        #[cfg(all(feature = "windows-native", windows))]
        let native = native.or(Some(Self::WindowsCredentialManager));
        #[cfg(all(
            feature = "secret-service",
            any(target_os = "linux", target_os = "freebsd", target_os = "openbsd")
        ))]
        let native = native.or(Some(Self::SecretService));
        #[cfg(all(feature = "keyutils", target_os = "linux"))]
        let native = native.or(Some(Self::KeyUtils));
        native.ok_or_else(|| {
            Error::new(
                ErrorKind::Configuration,
                "no native keyring store is compiled in: enable the keyutils, secret-service, \
             apple-native or windows-native feature",
            )
            .with_backend(crate::BACKEND)
        })
    }

    /// The largest value this backend accepts, in bytes.
    pub fn max_value_len(&self) -> usize {
        match self {
            #[cfg(all(feature = "keyutils", target_os = "linux"))]
            Self::KeyUtils => KEYUTILS_MAX_VALUE_LEN,
            // Windows generic credentials hold at most 2560 bytes (CRED_MAX_CREDENTIAL_BLOB_SIZE).
            #[cfg(all(feature = "windows-native", windows))]
            Self::WindowsCredentialManager => 2560,
            Self::Custom { max_value_len, .. } => *max_value_len,
            _ => DEFAULT_MAX_VALUE_LEN,
        }
    }

    /// Opens the credential store (blocking: may connect to D-Bus, within `timeout`).
    pub(crate) fn open(
        &self,
        timeout: std::time::Duration,
        scope: crate::KeyutilsScope,
        access: crate::KeyutilsAccess,
    ) -> Result<Arc<CredentialStore>> {
        let _ = (timeout, scope, access);
        let opened: keyring_core::Result<Arc<CredentialStore>> = match self {
            Self::PlatformDefault => return self.clone().resolve()?.open(timeout, scope, access),
            #[cfg(all(feature = "keyutils", target_os = "linux"))]
            Self::KeyUtils => crate::keyutils::KeyutilsStore::new(scope, access)
                .map(|s| s as Arc<CredentialStore>),
            #[cfg(all(
                feature = "secret-service",
                any(target_os = "linux", target_os = "freebsd", target_os = "openbsd")
            ))]
            Self::SecretService => {
                crate::secret_service_store::SecretServiceStore::connect(timeout)
                    .map(|s| s as Arc<CredentialStore>)
            }
            #[cfg(all(feature = "apple-native", target_os = "macos"))]
            Self::AppleKeychain => apple_native_keyring_store::keychain::Store::new()
                .map(|s| s as Arc<CredentialStore>),
            #[cfg(all(feature = "windows-native", windows))]
            Self::WindowsCredentialManager => {
                windows_native_keyring_store::Store::new().map(|s| s as Arc<CredentialStore>)
            }
            Self::Custom { store, .. } => Ok(store.clone()),
        };
        opened.map_err(|e| to_error(e, &format!("opening the {} keyring", self.label())))
    }
}

impl fmt::Debug for KeyringBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}
