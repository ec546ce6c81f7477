//! The envelope ciphertext format, version 1.
//!
//! ```text
//! offset   size  field
//! 0        4     magic "KMSE"
//! 4        1     format version (1)
//! 5        1     algorithm (1 = AES-256-GCM)
//! 6        2     N: length of the encrypted data key, big-endian (1..=1024)
//! 8        N     encrypted data key, as the crypto provider returned it (opaque)
//! 8+N      12    AES-GCM nonce (random)
//! 20+N     ..    AES-256-GCM ciphertext of the value, followed by its 16-byte tag
//! ```
//!
//! The associated data authenticated by AES-GCM is the header (bytes `0..8+N`, so the data key
//! cannot be swapped), then the key name, then the canonical encryption context: a ciphertext
//! copied to another key name, or read with another context, fails to decrypt.

use crate::error::{Error, ErrorKind, Result};

/// The four bytes every envelope ciphertext starts with.
pub const MAGIC: &[u8; 4] = b"KMSE";
/// The format version this code writes.
pub const VERSION: u8 = 1;
/// Algorithm id of AES-256-GCM.
pub const ALG_AES_256_GCM: u8 = 1;
/// The longest encrypted data key accepted.
pub const MAX_ENCRYPTED_KEY_LEN: usize = 1024;
/// AES-GCM nonce length.
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;
/// Header bytes before the encrypted data key.
pub const HEADER_LEN: usize = 8;
/// The most bytes the envelope adds to a value.
pub const MAX_OVERHEAD: usize = HEADER_LEN + MAX_ENCRYPTED_KEY_LEN + NONCE_LEN + TAG_LEN;

/// A parsed envelope ciphertext, borrowing from the stored bytes.
pub(crate) struct Parsed<'a> {
    /// Header and encrypted data key: the first part of the associated data.
    pub header: &'a [u8],
    pub encrypted_key: &'a [u8],
    pub nonce: &'a [u8],
    pub sealed: &'a [u8],
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::new(
        ErrorKind::InvalidData,
        format!("envelope: {}", reason.into()),
    )
}

/// The header (magic, version, algorithm, length, encrypted key) for a new ciphertext.
pub(crate) fn header(encrypted_key: &[u8]) -> Result<Vec<u8>> {
    if encrypted_key.is_empty() || encrypted_key.len() > MAX_ENCRYPTED_KEY_LEN {
        return Err(Error::new(
            ErrorKind::Configuration,
            format!(
                "envelope: the provider's encrypted data key is {} bytes, expected 1..={MAX_ENCRYPTED_KEY_LEN}",
                encrypted_key.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(HEADER_LEN + encrypted_key.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(ALG_AES_256_GCM);
    out.extend_from_slice(&(encrypted_key.len() as u16).to_be_bytes());
    out.extend_from_slice(encrypted_key);
    Ok(out)
}

/// Splits stored bytes into their parts, checking magic, version, algorithm and lengths.
pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed<'_>> {
    if bytes.len() < HEADER_LEN || &bytes[..4] != MAGIC {
        return Err(invalid(
            "stored value is not an envelope ciphertext (bad magic)",
        ));
    }
    if bytes[4] != VERSION {
        return Err(invalid(format!("unsupported format version {}", bytes[4])));
    }
    if bytes[5] != ALG_AES_256_GCM {
        return Err(invalid(format!("unsupported algorithm id {}", bytes[5])));
    }
    let key_len = u16::from_be_bytes([bytes[6], bytes[7]]) as usize;
    let key_end = HEADER_LEN + key_len;
    if key_len == 0
        || key_len > MAX_ENCRYPTED_KEY_LEN
        || bytes.len() < key_end + NONCE_LEN + TAG_LEN
    {
        return Err(invalid("truncated ciphertext"));
    }
    Ok(Parsed {
        header: &bytes[..key_end],
        encrypted_key: &bytes[HEADER_LEN..key_end],
        nonce: &bytes[key_end..key_end + NONCE_LEN],
        sealed: &bytes[key_end + NONCE_LEN..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_through_parse() {
        let mut bytes = header(b"edk-bytes").unwrap();
        bytes.extend_from_slice(&[9; NONCE_LEN]);
        bytes.extend_from_slice(&[7; TAG_LEN + 3]);
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.encrypted_key, b"edk-bytes");
        assert_eq!(parsed.nonce, &[9; NONCE_LEN]);
        assert_eq!(parsed.sealed.len(), TAG_LEN + 3);
        assert_eq!(parsed.header.len(), HEADER_LEN + 9);
    }

    #[test]
    fn rejects_what_it_did_not_write() {
        let good = {
            let mut b = header(b"k").unwrap();
            b.extend_from_slice(&[0; NONCE_LEN + TAG_LEN]);
            b
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"plaintext value".to_vec(), "bad magic"),
            (vec![], "bad magic"),
            (
                {
                    let mut b = good.clone();
                    b[4] = 2;
                    b
                },
                "version 2",
            ),
            (
                {
                    let mut b = good.clone();
                    b[5] = 9;
                    b
                },
                "algorithm id 9",
            ),
            (good[..good.len() - 1].to_vec(), "truncated"),
            (
                {
                    let mut b = good.clone();
                    b[6] = 0xff;
                    b
                },
                "truncated",
            ),
        ];
        for (bytes, reason) in cases {
            let err = parse(&bytes).err().expect("must be rejected");
            assert_eq!(err.kind(), ErrorKind::InvalidData);
            assert!(err.to_string().contains(reason), "{err}");
        }
        assert!(header(&[]).is_err());
        assert!(header(&vec![1; MAX_ENCRYPTED_KEY_LEN + 1]).is_err());
    }
}
