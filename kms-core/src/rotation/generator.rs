//! [`Generator`]: where a rotation's new value comes from, and [`Encoding`]: how random bytes
//! are written as a value.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretValue;

/// How [`Generator::random`] writes its random bytes into the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Encoding {
    /// URL-safe base64 without padding (RFC 4648 §5, alphabet `A–Z a–z 0–9 - _`): the default.
    /// Text every reader can decode, safe in URLs, shells, connection strings and JSON
    /// without escaping; 32 bytes become 43 characters.
    #[default]
    Base64Url,
    /// Standard base64 with `=` padding (RFC 4648 §4): 32 bytes become 44 characters.
    Base64,
    /// Lowercase hexadecimal: 32 bytes become 64 characters.
    Hex,
    /// The bytes themselves. Not text: a reader that expects UTF-8 (a JSON field, a
    /// connection string, [`SecretValue::expose_str`]) cannot decode it.
    Raw,
}

impl Encoding {
    /// A stable lowercase name: `"base64url"`, `"base64"`, `"hex"`, `"raw"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Base64Url => "base64url",
            Self::Base64 => "base64",
            Self::Hex => "hex",
            Self::Raw => "raw",
        }
    }

    /// Whether the encoded value is always ASCII text.
    pub const fn is_text(self) -> bool {
        !matches!(self, Self::Raw)
    }

    /// `bytes` encoded, into a buffer allocated once at its final size (no copy of the secret
    /// is left behind by a growing buffer).
    fn encode(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            Self::Raw => bytes.to_vec(),
            Self::Hex => {
                let mut out = Vec::with_capacity(bytes.len() * 2);
                for b in bytes {
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 15)]);
                }
                out
            }
            Self::Base64Url => base64(bytes, BASE64URL, false),
            Self::Base64 => base64(bytes, BASE64, true),
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> Vec<u8> {
    let len = if pad {
        bytes.len().div_ceil(3) * 4
    } else {
        (bytes.len() * 4).div_ceil(3)
    };
    let mut out = Vec::with_capacity(len);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(chunk.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(chunk.get(2).copied().unwrap_or(0));
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize]);
            } else if pad {
                out.push(b'=');
            }
        }
    }
    out
}

type MakeValue = dyn Fn() -> Result<SecretValue> + Send + Sync;

#[derive(Clone)]
enum Source {
    Random { bytes: usize, encoding: Encoding },
    Custom(Arc<MakeValue>),
}

/// Where a rotation's new value comes from: fresh random bytes from the OS CSPRNG, encoded
/// (the default: [`DEFAULT_BYTES`](Self::DEFAULT_BYTES) bytes as [`Encoding::Base64Url`]), or
/// a caller's function (a password with a required alphabet, a key pair, a value issued by
/// another system).
///
/// ```
/// use kms_core::rotation::{Encoding, Generator};
///
/// let value = Generator::default().generate()?;
/// assert_eq!(value.len(), 43); // 32 random bytes, base64url without padding
/// let hex = Generator::random(16, Encoding::Hex).generate()?;
/// assert_eq!(hex.len(), 32);
/// let fixed = Generator::from_fn(|| Ok("issued-elsewhere".into())).generate()?;
/// assert_eq!(fixed.expose_str()?, "issued-elsewhere");
/// # Ok::<(), kms_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Generator(Source);

impl Generator {
    /// Random bytes in the default value: 32 (256 bits).
    pub const DEFAULT_BYTES: usize = 32;

    /// `bytes` fresh bytes from the operating system's CSPRNG (`getrandom(2)` on Linux,
    /// through the `getrandom` crate), written as `encoding` says. `bytes` is at least 1.
    pub fn random(bytes: usize, encoding: Encoding) -> Self {
        Self(Source::Random {
            bytes: bytes.max(1),
            encoding,
        })
    }

    /// Values made by `make`, called once per rotation (before anything is written; an error
    /// it returns ends the rotation with that error and writes nothing).
    pub fn from_fn<F>(make: F) -> Self
    where
        F: Fn() -> Result<SecretValue> + Send + Sync + 'static,
    {
        Self(Source::Custom(Arc::new(make)))
    }

    /// A new value.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`] if the OS has no randomness to give (never on a booted
    /// Linux); what a caller's function returns.
    pub fn generate(&self) -> Result<SecretValue> {
        match &self.0 {
            Source::Random { bytes, encoding } => {
                let mut raw = Zeroizing::new(vec![0u8; *bytes]);
                getrandom::fill(&mut raw).map_err(|e| {
                    Error::new(
                        ErrorKind::Unavailable,
                        format!("the OS random number generator failed: {e}"),
                    )
                })?;
                Ok(SecretValue::new(encoding.encode(&raw)))
            }
            Source::Custom(make) => make(),
        }
    }

    /// Whether the values are always UTF-8 text: true for the random generator with a text
    /// encoding; unknown (false) for a caller's function.
    pub fn makes_text(&self) -> bool {
        matches!(&self.0, Source::Random { encoding, .. } if encoding.is_text())
    }
}

impl Default for Generator {
    /// [`DEFAULT_BYTES`](Self::DEFAULT_BYTES) random bytes as [`Encoding::Base64Url`].
    fn default() -> Self {
        Self::random(Self::DEFAULT_BYTES, Encoding::Base64Url)
    }
}

impl fmt::Debug for Generator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::Random { bytes, encoding } => f
                .debug_struct("Generator::Random")
                .field("bytes", bytes)
                .field("encoding", encoding)
                .finish(),
            Source::Custom(_) => f.write_str("Generator::Custom(..)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_match_rfc_4648() {
        // RFC 4648 §10 test vectors.
        for (input, std, url) in [
            ("", "", ""),
            ("f", "Zg==", "Zg"),
            ("fo", "Zm8=", "Zm8"),
            ("foo", "Zm9v", "Zm9v"),
            ("foob", "Zm9vYg==", "Zm9vYg"),
            ("fooba", "Zm9vYmE=", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy", "Zm9vYmFy"),
        ] {
            assert_eq!(Encoding::Base64.encode(input.as_bytes()), std.as_bytes());
            assert_eq!(Encoding::Base64Url.encode(input.as_bytes()), url.as_bytes());
        }
        assert_eq!(Encoding::Base64Url.encode(&[0xfb, 0xff]), b"-_8");
        assert_eq!(Encoding::Base64.encode(&[0xfb, 0xff]), b"+/8=");
        assert_eq!(Encoding::Hex.encode(&[0x00, 0xab, 0xff]), b"00abff");
    }

    #[test]
    fn random_values_have_the_size_asked_and_differ() {
        let a = Generator::default().generate().unwrap();
        let b = Generator::default().generate().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(
            a.expose_str()
                .unwrap()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(
            Generator::random(32, Encoding::Raw)
                .generate()
                .unwrap()
                .len(),
            32
        );
        assert_eq!(
            Generator::random(32, Encoding::Base64)
                .generate()
                .unwrap()
                .len(),
            44
        );
        assert!(Generator::default().makes_text());
        assert!(!Generator::random(8, Encoding::Raw).makes_text());
    }

    #[test]
    fn debug_names_the_source_only() {
        let g = Generator::from_fn(|| Ok("hunter2".into()));
        assert_eq!(format!("{g:?}"), "Generator::Custom(..)");
    }
}
