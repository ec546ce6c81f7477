//! `keyring`: the OS keyring (`kms_backend_keyring::KeyringStore`).

use std::path::PathBuf;

use serde::Deserialize;

/// `[stores.NAME.keyring]` / `keyring://<service>`: the OS credential store. Maps onto
/// `kms_backend_keyring::KeyringStoreBuilder`. (A custom `keyring_core` store is
/// programmatic only.)
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyringConfig {
    /// The service name entries are filed under. Required.
    pub service: Option<String>,
    /// `default`, `keyutils`, `secret-service`, `apple-keychain` or `windows` (default
    /// `default`: the platform's own).
    pub platform_store: Option<String>,
    /// The lock file serializing index updates (default
    /// `$XDG_RUNTIME_DIR/kms-keyring-<service>.lock`).
    pub lock_file: Option<PathBuf>,
}

/// The accepted `platform_store` values.
#[cfg(feature = "keyring")]
pub(crate) const PLATFORM_STORES: &str =
    "`default`, `keyutils`, `secret-service`, `apple-keychain`, `windows`";

/// A keyring store's options, checked (and where they came from): [`open`](Self::open)
/// opens the platform store.
#[cfg(feature = "keyring")]
pub(crate) struct KeyringPlan {
    builder: kms_backend_keyring::KeyringStoreBuilder,
    at: super::at::At,
}

#[cfg(feature = "keyring")]
impl KeyringPlan {
    /// Checks the options.
    pub(crate) fn new(k: &KeyringConfig, at: &super::at::At) -> kms_core::Result<Self> {
        use kms_backend_keyring::{KeyringBackend, KeyringStore};

        use crate::error::config_error;

        let service = k.service.as_deref().ok_or_else(|| {
            config_error(
                &at.key("keyring.service"),
                "missing: the keyring service name is required",
            )
        })?;
        let not_compiled = |name: &str, feature: &str| {
            config_error(
                &at.key("keyring.platform_store"),
                format_args!(
                    "`{name}` is not compiled in: enable the kms feature `{feature}` (on a platform that has it)"
                ),
            )
        };
        let backend = match k.platform_store.as_deref().unwrap_or("default") {
            "default" => KeyringBackend::PlatformDefault,
            #[cfg(target_os = "linux")]
            "keyutils" => KeyringBackend::KeyUtils,
            #[cfg(not(target_os = "linux"))]
            "keyutils" => return Err(not_compiled("keyutils", "keyring")),
            #[cfg(all(
                feature = "keyring-secret-service",
                any(target_os = "linux", target_os = "freebsd", target_os = "openbsd")
            ))]
            "secret-service" => KeyringBackend::SecretService,
            #[cfg(not(all(
                feature = "keyring-secret-service",
                any(target_os = "linux", target_os = "freebsd", target_os = "openbsd")
            )))]
            "secret-service" => {
                return Err(not_compiled("secret-service", "keyring-secret-service"));
            }
            #[cfg(all(feature = "keyring-apple", target_os = "macos"))]
            "apple-keychain" => KeyringBackend::AppleKeychain,
            #[cfg(not(all(feature = "keyring-apple", target_os = "macos")))]
            "apple-keychain" => return Err(not_compiled("apple-keychain", "keyring-apple")),
            #[cfg(all(feature = "keyring-windows", windows))]
            "windows" => KeyringBackend::WindowsCredentialManager,
            #[cfg(not(all(feature = "keyring-windows", windows)))]
            "windows" => return Err(not_compiled("windows", "keyring-windows")),
            other => {
                return Err(config_error(
                    &at.key("keyring.platform_store"),
                    format_args!("unknown value {other:?}: expected one of {PLATFORM_STORES}"),
                ));
            }
        };
        let mut builder = KeyringStore::builder(service).backend(backend);
        if let Some(p) = &k.lock_file {
            builder = builder.lock_file(p.clone());
        }
        Ok(Self {
            builder,
            at: at.clone(),
        })
    }

    /// Opens the platform store.
    pub(crate) async fn open(self) -> kms_core::Result<std::sync::Arc<dyn kms_core::KeyStore>> {
        let store =
            self.builder.build().await.map_err(|e| {
                crate::error::while_applying(&self.at.key("keyring.platform_store"), e)
            })?;
        Ok(std::sync::Arc::new(store))
    }
}
