//! The secret value type and what a backend knows about a stored secret.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind};

/// Secret bytes: zeroized on drop, redacted in `Debug`, cheap to clone.
///
/// - No `Display`, no `Serialize`: the bytes are read only through
///   [`expose_secret`](SecretValue::expose_secret) or [`expose_str`](SecretValue::expose_str),
///   so every place that touches them is easy to find in review.
/// - Clones share one allocation (`Arc`); the bytes are overwritten with zeros when the last
///   clone is dropped. A cache can hand out many copies without copying the secret.
/// - Equality compares the bytes in constant time for equal lengths.
///
/// ```
/// use kms_core::SecretValue;
///
/// let secret = SecretValue::from("hunter2");
/// assert_eq!(format!("{secret:?}"), "SecretValue([REDACTED])");
/// assert_eq!(secret.expose_str()?, "hunter2");
/// # Ok::<(), kms_core::Error>(())
/// ```
#[derive(Clone)]
pub struct SecretValue(Arc<Zeroizing<Vec<u8>>>);

impl SecretValue {
    /// Takes ownership of `bytes` (no copy is made, so no unzeroized copy is left behind).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Arc::new(Zeroizing::new(bytes)))
    }

    /// Copies `bytes` into a new secret. The caller remains responsible for its own copy.
    pub fn copy_from_slice(bytes: &[u8]) -> Self {
        Self::new(bytes.to_vec())
    }

    /// The secret bytes. Keep the borrow short and never log it.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// The secret as UTF-8 text.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidData`] if the bytes are not UTF-8; the error names the byte offset,
    /// never the bytes.
    pub fn expose_str(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.0).map_err(|e| {
            Error::new(
                ErrorKind::InvalidData,
                format!(
                    "secret is not valid UTF-8 (first bad byte at offset {})",
                    e.valid_up_to()
                ),
            )
        })
    }

    /// Length in bytes (used by size limits and cache weighers).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue([REDACTED])")
    }
}

impl PartialEq for SecretValue {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.expose_secret(), other.expose_secret());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Eq for SecretValue {}

impl From<Vec<u8>> for SecretValue {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

impl From<String> for SecretValue {
    fn from(text: String) -> Self {
        Self::new(text.into_bytes())
    }
}

impl From<&str> for SecretValue {
    fn from(text: &str) -> Self {
        Self::copy_from_slice(text.as_bytes())
    }
}

impl From<&[u8]> for SecretValue {
    fn from(bytes: &[u8]) -> Self {
        Self::copy_from_slice(bytes)
    }
}

/// What a backend knows about one stored version of a secret. Every field is optional: a
/// backend fills what it knows (Vault: version and created time; AWS: version id and created
/// date; the keyring: nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretMeta {
    /// The backend's version identifier (Vault `"3"`, an AWS version UUID, memory `"1"`).
    /// Shared (`Arc<str>`), so handing out a cached secret allocates nothing.
    pub version: Option<Arc<str>>,
    /// When this version was written.
    pub created_at: Option<SystemTime>,
    /// When the secret (any version) was last written, if the backend tracks it separately.
    pub updated_at: Option<SystemTime>,
    /// When the backend will next rotate the secret, where it publishes a schedule (AWS
    /// Secrets Manager's `NextRotationDate`, or `LastRotatedDate` plus the rotation rules'
    /// interval). A cache never keeps this version fresh past it (see kms-cache's
    /// schedule-aware lifetime); `None` when the backend has no schedule or does not say.
    pub next_rotation: Option<SystemTime>,
}

impl SecretMeta {
    /// Metadata with a version id and nothing else.
    pub fn with_version(version: impl Into<Arc<str>>) -> Self {
        Self {
            version: Some(version.into()),
            ..Self::default()
        }
    }

    /// Sets the created time.
    #[must_use]
    pub fn created_at(mut self, at: SystemTime) -> Self {
        self.created_at = Some(at);
        self
    }

    /// Sets the updated time.
    #[must_use]
    pub fn updated_at(mut self, at: SystemTime) -> Self {
        self.updated_at = Some(at);
        self
    }

    /// Sets when the backend will next rotate the secret (the field of the same name).
    #[must_use]
    pub fn next_rotation(mut self, at: SystemTime) -> Self {
        self.next_rotation = Some(at);
        self
    }
}

/// A secret as [`KeyStore::get`](crate::KeyStore::get) returns it: the value and its metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSecret {
    /// The secret bytes.
    pub value: SecretValue,
    /// What the backend knows about this version.
    pub meta: SecretMeta,
}

impl StoredSecret {
    /// A stored secret with no metadata.
    pub fn new(value: SecretValue) -> Self {
        Self {
            value,
            meta: SecretMeta::default(),
        }
    }

    /// A stored secret with metadata.
    pub fn with_meta(value: SecretValue, meta: SecretMeta) -> Self {
        Self { value, meta }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_bytes() {
        let s = SecretValue::from("correct horse battery staple");
        let shown = format!("{s:?} {:?}", StoredSecret::new(s.clone()));
        assert!(!shown.contains("horse"), "{shown}");
        assert!(shown.contains("[REDACTED]"));
    }

    #[test]
    fn clones_share_storage() {
        let s = SecretValue::from(vec![1, 2, 3]);
        let c = s.clone();
        assert_eq!(s.expose_secret().as_ptr(), c.expose_secret().as_ptr());
        assert_eq!(s, c);
        assert_ne!(s, SecretValue::from(vec![1, 2, 4]));
        assert_ne!(s, SecretValue::from(vec![1, 2]));
    }

    #[test]
    fn non_utf8_is_invalid_data_without_bytes() {
        let err = SecretValue::from(vec![b'o', b'k', 0xff, 0xfe])
            .expose_str()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert!(err.to_string().contains("offset 2"));
    }
}
