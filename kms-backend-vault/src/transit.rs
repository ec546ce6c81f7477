//! [`VaultTransitProvider`]: Vault Transit as a [`CryptoProvider`].

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kms_core::{CryptoProvider, DataKey, EncryptionContext, Error, ErrorKind, Result, SecretValue};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::BACKEND;
use crate::client::VaultClient;
use crate::config_path::config_path;
use crate::engine::Engine;
use crate::error_map::{Failure, to_error};
use crate::mount::check_mount;

/// Prepended to the context bytes so the Transit `context` is never empty (a derived key
/// requires one) and is versioned.
const CONTEXT_TAG: &[u8] = b"kms-core/context/v1\0";

/// Vault Transit as a [`CryptoProvider`].
///
/// - The Transit key must be **derived** (`derived=true`, e.g. `aes256-gcm96`):
///   [`EncryptionContext`] maps onto Transit's key-derivation `context` as
///   `base64("kms-core/context/v1\0" ++ context.canonical_bytes())`, so a ciphertext only
///   decrypts under the same context (and the empty context is still a valid one).
///   [`ensure_key`](Self::ensure_key) creates such a key.
/// - Ciphertexts are Transit's own strings (`vault:v1:…`) as bytes.
/// - Data keys come from `transit/datakey/plaintext/<key>` (256 bits).
/// - A ciphertext that does not decrypt (tampered, other context, other key) is
///   [`ErrorKind::InvalidData`]; decrypting with a key that does not exist is
///   [`ErrorKind::Configuration`] naming the key.
/// - The key must be derived (checked once, with the mount): a key that is not is
///   [`ErrorKind::Configuration`] on every operation, as Transit would ignore the context.
///
/// The mount is checked to be a Transit engine before the first request (once, shared by
/// clones): a wrong mount is [`ErrorKind::Configuration`].
#[derive(Clone)]
pub struct VaultTransitProvider {
    client: VaultClient,
    mount: String,
    key: String,
    mount_checked: Arc<OnceCell<()>>,
}

impl fmt::Debug for VaultTransitProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultTransitProvider")
            .field("mount", &self.mount)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for VaultTransitProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VaultTransit({}/{})", self.mount, self.key)
    }
}

impl VaultTransitProvider {
    /// The Transit key `key` on the `transit` mount.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] if `key` is not a valid path segment list (checked like
    /// a key name: `"../x"` is rejected).
    pub fn new(client: VaultClient, key: impl AsRef<str>) -> Result<Self> {
        Ok(Self {
            client,
            mount: "transit".into(),
            key: config_path("Transit key", key.as_ref())?,
            mount_checked: Arc::new(OnceCell::new()),
        })
    }

    /// Uses another Transit mount.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] if `mount` is not a valid path (checked like a key name).
    pub fn with_mount(mut self, mount: impl AsRef<str>) -> Result<Self> {
        self.mount = config_path("Transit mount", mount.as_ref())?;
        self.mount_checked = Arc::new(OnceCell::new());
        Ok(self)
    }

    /// Calls Vault after checking (once) that the mount is a Transit engine.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Option<Value>> {
        if !self.mount_checked.initialized() {
            self.mount_checked
                .get_or_try_init(|| async {
                    check_mount(&self.client, &self.mount, Engine::Transit).await?;
                    self.check_key_is_derived().await
                })
                .await?;
        }
        self.client
            .call(method, path, &[], body, what)
            .await
            .map_err(|e| {
                // Transit answers 400 "encryption key not found" (decrypt, datakey, ...): the
                // key setting is wrong, not the ciphertext or the input.
                if e.kind() == ErrorKind::InvalidInput
                    && e.message().contains("encryption key not found")
                {
                    Error::new(
                        ErrorKind::Configuration,
                        format!(
                            "{what}: the Transit key {:?} does not exist on the mount {:?} \
                             (check the Transit key setting, or create it with ensure_key)",
                            self.key, self.mount
                        ),
                    )
                    .with_backend(BACKEND)
                    .with_code("400")
                } else {
                    e
                }
            })
    }

    /// An existing key must be derived: Transit ignores the context on a key that is not
    /// (encrypt and decrypt succeed under any context), so the encryption context would bind
    /// nothing. A missing key is left to `encrypt` (Transit creates it, derived, as the
    /// context is never empty) or [`ensure_key`](Self::ensure_key); decrypt of a missing key
    /// is `Configuration` by [`call`](Self::call).
    async fn check_key_is_derived(&self) -> Result<()> {
        let path = format!("{}/keys/{}", self.mount, self.key);
        let what = format!("read {path}");
        match self.client.call(Method::GET, &path, &[], None, &what).await {
            Ok(answer) => {
                let derived = answer
                    .as_ref()
                    .and_then(|a| a.get("data"))
                    .and_then(|d| d.get("derived"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if derived {
                    Ok(())
                } else {
                    Err(not_derived(&path))
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Creates the key as a derived `aes256-gcm96` key if it does not exist (needs
    /// `create` on `transit/keys/<key>`). An existing key that is not derived is
    /// [`ErrorKind::Configuration`].
    pub async fn ensure_key(&self) -> Result<()> {
        let path = format!("{}/keys/{}", self.mount, self.key);
        let what = format!("read {path}");
        match self.call(Method::GET, &path, None, &what).await {
            Ok(answer) => {
                let derived = answer
                    .as_ref()
                    .and_then(|a| a.get("data"))
                    .and_then(|d| d.get("derived"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if derived {
                    Ok(())
                } else {
                    Err(not_derived(&path))
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let body = json!({ "type": "aes256-gcm96", "derived": true });
                self.call(Method::POST, &path, Some(&body), &format!("create {path}"))
                    .await
                    .map(drop)
            }
            Err(e) => Err(e),
        }
    }

    fn context(context: &EncryptionContext) -> String {
        let mut bytes = CONTEXT_TAG.to_vec();
        bytes.extend_from_slice(&context.canonical_bytes());
        STANDARD.encode(bytes)
    }

    fn field<'a>(answer: &'a Option<Value>, field: &str, what: &str) -> Result<&'a str> {
        answer
            .as_ref()
            .and_then(|a| a.get("data"))
            .and_then(|d| d.get(field))
            .and_then(Value::as_str)
            .ok_or_else(|| to_error(Failure::Malformed(format!("no data.{field}")), what))
    }

    fn decode_b64(text: &str, what: &str) -> Result<SecretValue> {
        STANDARD
            .decode(text)
            .map(SecretValue::new)
            .map_err(|_| to_error(Failure::Malformed("plaintext is not base64".into()), what))
    }
}

#[async_trait]
impl CryptoProvider for VaultTransitProvider {
    fn provider(&self) -> &'static str {
        "vault_transit"
    }

    async fn encrypt(
        &self,
        plaintext: &SecretValue,
        context: &EncryptionContext,
    ) -> Result<Vec<u8>> {
        let path = format!("{}/encrypt/{}", self.mount, self.key);
        let what = format!("encrypt {path}");
        let body = json!({
            "plaintext": STANDARD.encode(plaintext.expose_secret()),
            "context": Self::context(context),
        });
        let answer = self.call(Method::POST, &path, Some(&body), &what).await?;
        drop(body);
        Ok(Self::field(&answer, "ciphertext", &what)?
            .as_bytes()
            .to_vec())
    }

    async fn decrypt(&self, ciphertext: &[u8], context: &EncryptionContext) -> Result<SecretValue> {
        let path = format!("{}/decrypt/{}", self.mount, self.key);
        let what = format!("decrypt {path}");
        let ciphertext = std::str::from_utf8(ciphertext).map_err(|_| {
            Error::new(
                ErrorKind::InvalidData,
                format!("{what}: not a Transit ciphertext"),
            )
            .with_backend(BACKEND)
        })?;
        let body = json!({ "ciphertext": ciphertext, "context": Self::context(context) });
        let answer = self
            .call(Method::POST, &path, Some(&body), &what)
            .await
            .map_err(|e| {
                // Transit answers 400 for a ciphertext that fails to decrypt.
                if e.kind() == ErrorKind::InvalidInput {
                    Error::new(
                        ErrorKind::InvalidData,
                        format!("{what}: ciphertext does not decrypt under this key and context"),
                    )
                    .with_backend(BACKEND)
                    .with_code("400")
                } else {
                    e
                }
            })?;
        let plaintext = Self::field(&answer, "plaintext", &what)?;
        Self::decode_b64(plaintext, &what)
    }

    async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey> {
        let path = format!("{}/datakey/plaintext/{}", self.mount, self.key);
        let what = format!("datakey {path}");
        let body = json!({ "bits": 256, "context": Self::context(context) });
        let answer = self.call(Method::POST, &path, Some(&body), &what).await?;
        let plaintext = Self::decode_b64(Self::field(&answer, "plaintext", &what)?, &what)?;
        let ciphertext = Self::field(&answer, "ciphertext", &what)?
            .as_bytes()
            .to_vec();
        Ok(DataKey {
            plaintext,
            ciphertext,
        })
    }
}

fn not_derived(path: &str) -> Error {
    Error::new(
        ErrorKind::Configuration,
        format!(
            "{path}: the Transit key is not derived, so Transit would ignore the encryption \
             context; use a key created with derived=true (ensure_key creates one)"
        ),
    )
    .with_backend(BACKEND)
}
