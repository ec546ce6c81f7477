//! The `export` / `import` bundle: a JSON document of keys and values, encrypted with age
//! (<https://age-encryption.org/v1>) to a passphrase (scrypt) or to X25519 recipients.
//!
//! The plaintext is `{"format":"kms-bundle","version":1,"keys":[{"name":…,"value_base64":…}]}`.
//! It is built in, and parsed from, zeroizing buffers.

use std::io::{Read, Write};

use age::secrecy::SecretString;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kms_core::{KeyName, SecretValue};
use serde::Deserialize;
use zeroize::{Zeroize, Zeroizing};

use crate::exit::{CliResult, Exit, Failure};

/// The first bytes of every binary age file.
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1";
/// The `format` field of a bundle.
const FORMAT: &str = "kms-bundle";

/// Keys and their values, sorted by name.
#[derive(Debug, Default)]
pub struct Bundle {
    /// The entries.
    pub keys: Vec<(KeyName, SecretValue)>,
}

impl Bundle {
    /// The JSON plaintext, in a buffer zeroed on drop.
    pub fn to_json(&self) -> Zeroizing<Vec<u8>> {
        let size: usize = self
            .keys
            .iter()
            .map(|(k, v)| k.as_str().len() * 2 + v.len() * 4 / 3 + 64)
            .sum::<usize>()
            + 64;
        let mut out = Zeroizing::new(Vec::with_capacity(size));
        let mut b64 = Zeroizing::new(String::with_capacity(size));
        out.extend_from_slice(br#"{"format":"kms-bundle","version":1,"keys":["#);
        for (i, (name, value)) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"name":"#);
            // Key names are validated (printable, no quotes to escape), but escape anyway.
            let quoted = serde_json::to_string(name.as_str()).unwrap_or_default();
            out.extend_from_slice(quoted.as_bytes());
            out.extend_from_slice(br#","value_base64":""#);
            b64.clear();
            STANDARD.encode_string(value.expose_secret(), &mut b64);
            out.extend_from_slice(b64.as_bytes());
            out.extend_from_slice(br#""}"#);
        }
        out.extend_from_slice(b"]}\n");
        out
    }

    /// Parses the JSON plaintext.
    ///
    /// # Errors
    ///
    /// [`Exit::InvalidInput`] naming what is wrong (never a value).
    pub fn from_json(bytes: &[u8]) -> CliResult<Self> {
        let raw: RawBundle = serde_json::from_slice(bytes).map_err(|e| {
            invalid(format!(
                "not a kms bundle: line {} column {}: {}",
                e.line(),
                e.column(),
                e.classify_name()
            ))
        })?;
        if raw.format != FORMAT || raw.version != 1 {
            return Err(invalid(format!(
                "unsupported bundle format {:?} version {}; this kms reads {FORMAT:?} version 1",
                raw.format, raw.version
            )));
        }
        let mut keys = Vec::with_capacity(raw.keys.len());
        for entry in &raw.keys {
            let name = KeyName::new(&entry.name).map_err(Failure::from)?;
            let bytes = STANDARD
                .decode(entry.value_base64.as_bytes())
                .map_err(|_| invalid(format!("key {name}: value_base64 is not base64")))?;
            keys.push((name, SecretValue::new(bytes)));
        }
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self { keys })
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected field or type",
            serde_json::error::Category::Eof => "unexpected end",
        }
    }
}

fn invalid(message: String) -> Failure {
    Failure::new(Exit::InvalidInput, message)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBundle {
    format: String,
    version: u32,
    keys: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: String,
    value_base64: String,
}

impl Drop for RawEntry {
    fn drop(&mut self) {
        self.value_base64.zeroize();
    }
}

/// How a bundle is protected on disk.
pub enum Seal {
    /// age with a passphrase (scrypt recipient).
    Passphrase(SecretString),
    /// age to X25519 recipients (`age1…`).
    Recipients(Vec<age::x25519::Recipient>),
    /// No encryption (only with `--plaintext-i-understand`).
    Plaintext,
}

/// How to open a bundle.
pub enum Unseal {
    /// A passphrase, for a passphrase-encrypted bundle.
    Passphrase(SecretString),
    /// Identities (`AGE-SECRET-KEY-1…`) from an identity file.
    Identities(Vec<Box<dyn age::Identity>>),
}

/// Whether `file` is an age file (else it is taken as a plaintext bundle).
pub fn is_age(file: &[u8]) -> bool {
    file.starts_with(AGE_MAGIC)
}

/// Whether the age file `file` is encrypted to a passphrase.
///
/// # Errors
///
/// [`Exit::InvalidInput`] if the age header cannot be read.
pub fn needs_passphrase(file: &[u8]) -> CliResult<bool> {
    let decryptor = age::Decryptor::new_buffered(file)
        .map_err(|e| invalid(format!("not a readable age file: {e}")))?;
    Ok(decryptor.is_scrypt())
}

/// Encrypts the plaintext `json` as `seal` says.
///
/// # Errors
///
/// [`Exit::Usage`] for an empty recipient list, [`Exit::Other`] if age fails.
pub fn seal(json: &[u8], seal: Seal) -> CliResult<Vec<u8>> {
    let encryptor = match seal {
        Seal::Plaintext => return Ok(json.to_vec()),
        Seal::Passphrase(p) => age::Encryptor::with_user_passphrase(p),
        Seal::Recipients(rs) => {
            age::Encryptor::with_recipients(rs.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| Failure::usage(format!("age recipients: {e}")))?
        }
    };
    let mut out = Vec::with_capacity(json.len() + 512);
    let mut writer = encryptor
        .wrap_output(&mut out)
        .map_err(|e| Failure::new(Exit::Other, format!("age: {e}")))?;
    writer
        .write_all(json)
        .and_then(|()| writer.finish().map(|_| ()))
        .map_err(|e| Failure::new(Exit::Other, format!("age: {e}")))?;
    Ok(out)
}

/// Decrypts the age file `file`.
///
/// # Errors
///
/// [`Exit::Denied`] for a wrong passphrase or identity, [`Exit::InvalidInput`] for a damaged
/// file.
pub fn unseal(file: &[u8], unseal: &Unseal) -> CliResult<Zeroizing<Vec<u8>>> {
    let decryptor = age::Decryptor::new_buffered(file)
        .map_err(|e| invalid(format!("not a readable age file: {e}")))?;
    let scrypt;
    let identities: Vec<&dyn age::Identity> = match unseal {
        Unseal::Passphrase(p) => {
            scrypt = age::scrypt::Identity::new(p.clone());
            vec![&scrypt as &dyn age::Identity]
        }
        Unseal::Identities(ids) => ids.iter().map(|i| i.as_ref()).collect(),
    };
    let mut reader = decryptor
        .decrypt(identities.into_iter())
        .map_err(|e| match e {
            age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys => {
                Failure::new(
                    Exit::Denied,
                    "cannot decrypt the bundle: wrong passphrase or identity",
                )
            }
            other => invalid(format!("cannot decrypt the bundle: {other}")),
        })?;
    let mut plain = Zeroizing::new(Vec::with_capacity(file.len()));
    reader
        .read_to_end(&mut plain)
        .map_err(|e| invalid(format!("the bundle is damaged: {e}")))?;
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> Bundle {
        Bundle {
            keys: vec![
                (KeyName::new("a/one").unwrap(), SecretValue::from("first")),
                (
                    KeyName::new("a/two").unwrap(),
                    SecretValue::from(vec![0u8, 255, 10]),
                ),
            ],
        }
    }

    #[test]
    fn json_round_trip_keeps_binary_values() {
        let json = bundle().to_json();
        let back = Bundle::from_json(&json).unwrap();
        assert_eq!(back.keys, bundle().keys);
    }

    #[test]
    fn age_round_trip_with_recipient_and_wrong_identity() {
        let id = age::x25519::Identity::generate();
        let sealed = seal(&bundle().to_json(), Seal::Recipients(vec![id.to_public()])).unwrap();
        assert!(is_age(&sealed));
        assert!(!needs_passphrase(&sealed).unwrap());
        assert!(!sealed.windows(5).any(|w| w == b"first"));
        let plain = unseal(&sealed, &Unseal::Identities(vec![Box::new(id)])).unwrap();
        assert_eq!(Bundle::from_json(&plain).unwrap().keys, bundle().keys);
        let other = age::x25519::Identity::generate();
        let err = unseal(&sealed, &Unseal::Identities(vec![Box::new(other)])).unwrap_err();
        assert_eq!(err.exit, Exit::Denied);
    }

    #[test]
    fn bad_bundles_are_invalid_input() {
        for bad in [
            &b"{}"[..],
            br#"{"format":"other","version":1,"keys":[]}"#,
            br#"{"format":"kms-bundle","version":2,"keys":[]}"#,
            br#"{"format":"kms-bundle","version":1,"keys":[{"name":"a","value_base64":"***"}]}"#,
            br#"{"format":"kms-bundle","version":1,"keys":[{"name":"/bad","value_base64":"YQ=="}]}"#,
            b"not json",
        ] {
            let err = Bundle::from_json(bad).unwrap_err();
            assert_eq!(err.exit, Exit::InvalidInput, "{}", String::from_utf8_lossy(bad));
        }
    }
}
