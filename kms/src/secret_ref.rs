//! [`SecretRef`]: a credential given as a reference (`env:NAME`, `file:/path`) or inline.

use std::fmt;
use std::path::PathBuf;

use kms_core::{Result, SecretValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::error::config_error;

/// A credential-bearing option (a token, a secret id, a private key, a master key).
///
/// Written as text in any configuration source, by this exact rule:
///
/// - `env:NAME`: the value of the environment variable `NAME` (letters, digits and `_`, not
///   starting with a digit), read when the store is built;
/// - `file:/path` (or the file URL `file:///path`): the contents of the file at that absolute
///   path (one trailing newline removed), read when the store is built, as Vault Agent and
///   the AWS credential process hand secrets over;
/// - text shaped like a reference but not one of those two is an error, so a typo never
///   becomes the secret: a scheme-shaped word (a letter, then letters, digits, `+`, `-`, `.`)
///   and a colon at the start, after any whitespace: `ENV:SID`, `Env:x`, `vault:secret/x`,
///   `https://…`, ` env:X`; also `file://host/…` and `file:relative`. A secret that itself
///   has that shape is given by reference;
/// - anything else: the secret itself, inline. It is held as a [`SecretString`] (zeroized on
///   drop) and shown as `[REDACTED]` by `Debug`, `Display` and every error.
///
/// References are not secret and are shown as written (`env:VAULT_TOKEN`).
#[derive(Clone)]
pub struct SecretRef(Source);

#[derive(Clone)]
enum Source {
    Env(String),
    File(PathBuf),
    Inline(SecretString),
}

impl SecretRef {
    /// A reference to the environment variable `name`.
    pub fn env(name: impl Into<String>) -> Self {
        Self(Source::Env(name.into()))
    }

    /// A reference to the file at `path`.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self(Source::File(path.into()))
    }

    /// The secret itself.
    pub fn inline(secret: impl Into<String>) -> Self {
        Self(Source::Inline(SecretString::from(secret.into())))
    }

    /// Parses the text form (`env:NAME`, `file:/path`, or an inline secret); see
    /// [`SecretRef`] for the exact rule. Errors never hold the text.
    fn parse(text: &str) -> std::result::Result<Self, &'static str> {
        if let Some(name) = text.strip_prefix("env:") {
            if name.is_empty() {
                return Err("an `env:` reference needs a variable name (`env:VAULT_TOKEN`)");
            }
            if !is_variable_name(name) {
                return Err(
                    "an `env:` reference names a variable: letters, digits and `_`, not starting \
                     with a digit (`env:VAULT_TOKEN`; no `$`, braces or spaces)",
                );
            }
            Ok(Self::env(name))
        } else if let Some(path) = text.strip_prefix("file:") {
            if path.is_empty() {
                return Err("a `file:` reference needs a path (`file:/run/secrets/token`)");
            }
            // `file:///abs` is the file URL of `/abs`; `file://host/…` names a host, which a
            // reference cannot reach.
            let path = match path.strip_prefix("//") {
                Some(rest) if rest.starts_with('/') => rest,
                Some(_) => {
                    return Err(
                        "a `file:` reference is a path, not a URL with a host: write \
                         `file:/run/secrets/token` (or `file:///run/secrets/token`)",
                    );
                }
                None => path,
            };
            if !std::path::Path::new(path).is_absolute() {
                return Err(
                    "a `file:` reference needs an absolute path (`file:/run/secrets/token`), \
                     so that it does not depend on the working directory",
                );
            }
            Ok(Self::file(path))
        } else if text.is_empty() {
            Err("an empty secret; give `env:NAME`, `file:/path` or the value")
        } else if looks_like_reference(text) {
            Err(
                "looks like a reference but is not one (value not shown): the references are \
                 `env:NAME` and `file:/path`, lower-case, with nothing before them; a secret \
                 that itself starts with `word:` must be given by reference",
            )
        } else {
            Ok(Self::inline(text))
        }
    }

    /// Whether the secret is written inline (and so redacted wherever it would be shown).
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Source::Inline(_))
    }

    /// Reads the secret as text. `key` names the option in errors (a missing variable, an
    /// unreadable file, bytes that are not UTF-8); the secret itself never appears in them.
    pub fn resolve(&self, key: &str) -> Result<SecretString> {
        match &self.0 {
            Source::Inline(s) => Ok(s.clone()),
            Source::Env(name) => match std::env::var(name) {
                Ok(v) if !v.is_empty() => Ok(SecretString::from(v)),
                Ok(_) => Err(config_error(
                    key,
                    format_args!("the environment variable {name} (from `env:{name}`) is empty"),
                )),
                Err(std::env::VarError::NotPresent) => Err(config_error(
                    key,
                    format_args!("the environment variable {name} (from `env:{name}`) is not set"),
                )),
                Err(std::env::VarError::NotUnicode(_)) => Err(config_error(
                    key,
                    format_args!("the environment variable {name} is not valid UTF-8"),
                )),
            },
            Source::File(path) => {
                let bytes = self.read_file(key, path)?;
                let text = String::from_utf8(bytes.expose_secret().to_vec()).map_err(|_| {
                    config_error(
                        key,
                        format_args!("the file {} is not valid UTF-8", path.display()),
                    )
                })?;
                Ok(SecretString::from(text))
            }
        }
    }

    /// Reads the secret as bytes (a file may hold binary data).
    pub fn resolve_bytes(&self, key: &str) -> Result<SecretValue> {
        match &self.0 {
            Source::File(path) => self.read_file(key, path),
            _ => Ok(SecretValue::from(self.resolve(key)?.expose_secret())),
        }
    }

    fn read_file(&self, key: &str, path: &std::path::Path) -> Result<SecretValue> {
        // Configuration is read once, at build time, from a small local file; at most
        // MAX_FILE_LEN bytes, so `file:/dev/zero` or a huge file is an error, not a hang.
        let unreadable = |e: std::io::Error| {
            config_error(
                key,
                format_args!(
                    "cannot read {} (from `file:{}`): {}",
                    path.display(),
                    path.display(),
                    e.kind()
                ),
            )
        };
        let mut bytes = Vec::new();
        let read = std::fs::File::open(path).and_then(|f| {
            std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_FILE_LEN + 1), &mut bytes)
        });
        if let Err(e) = read {
            zeroize::Zeroize::zeroize(&mut bytes);
            return Err(unreadable(e));
        }
        if bytes.len() as u64 > MAX_FILE_LEN {
            zeroize::Zeroize::zeroize(&mut bytes);
            return Err(config_error(
                key,
                format_args!(
                    "the file {} is larger than {MAX_FILE_LEN} bytes",
                    path.display()
                ),
            ));
        }
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        if bytes.is_empty() {
            return Err(config_error(
                key,
                format_args!("the file {} is empty", path.display()),
            ));
        }
        Ok(SecretValue::new(bytes))
    }
}

/// The largest secret file read (a token, a key or a PEM block is far smaller).
const MAX_FILE_LEN: u64 = 1 << 20;

/// An environment variable name as shells write one: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `text` (after any leading whitespace) starts with a URI-scheme-shaped word and a
/// colon: a letter, then letters, digits, `+`, `-` or `.` (RFC 3986's scheme), then `:`.
/// `ENV:SID`, `Env:x`, `vault:secret/x`, `https://…` and ` env:X` do; a Vault token
/// (`hvs.…`), an AppRole id (a UUID), a base64 key and a PEM block do not.
fn looks_like_reference(text: &str) -> bool {
    let trimmed = text.trim_start();
    let Some((scheme, _)) = trimmed.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::Env(name) => write!(f, "env:{name}"),
            Source::File(path) => write!(f, "file:{}", path.display()),
            Source::Inline(_) => f.write_str("[REDACTED]"),
        }
    }
}

struct SecretVisitor;

impl SecretVisitor {
    /// Every non-text value is refused without showing it: it may be the secret.
    fn refuse<E: de::Error>() -> E {
        E::custom(
            "invalid type (value not shown: it may be a secret): expected text, \
             `env:NAME` or `file:/path`",
        )
    }
}

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = SecretRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("text: `env:NAME`, `file:/path` or the secret itself")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<SecretRef, E> {
        SecretRef::parse(v).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<SecretRef, E> {
        Err(Self::refuse())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<SecretRef, E> {
        Err(Self::refuse())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<SecretRef, E> {
        Err(Self::refuse())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<SecretRef, E> {
        Err(Self::refuse())
    }

    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> std::result::Result<SecretRef, A::Error> {
        Err(Self::refuse())
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> std::result::Result<SecretRef, A::Error> {
        Err(Self::refuse())
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(SecretVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_shown_inline_values_are_not() {
        let inline = SecretRef::parse("hvs.TOPSECRET").unwrap();
        assert!(inline.is_inline());
        assert_eq!(format!("{inline}"), "[REDACTED]");
        assert_eq!(format!("{inline:?}"), "[REDACTED]");
        let env = SecretRef::parse("env:VAULT_TOKEN").unwrap();
        assert_eq!(env.to_string(), "env:VAULT_TOKEN");
        let file = SecretRef::parse("file:/run/secrets/t").unwrap();
        assert_eq!(format!("{file:?}"), "file:/run/secrets/t");
        assert!(SecretRef::parse("env:").is_err());
        assert!(SecretRef::parse("file:").is_err());
        assert!(SecretRef::parse("").is_err());
    }

    #[test]
    fn reference_look_alikes_are_errors_that_do_not_show_the_text() {
        for bad in [
            "ENV:SID",
            "Env:x",
            "eNv:VAULT_TOKEN",
            "FILE:/var/tok",
            "vault:secret/data/x",
            "aws-sm:payments",
            "https://vault.example/token",
            " env:VAULT_TOKEN",
            "\tfile:/var/tok",
            "env: MY_TOKEN",
            "env:$MY_TOKEN",
            "env:${MY_TOKEN}",
            "env:1ABC",
            "file:var/tok",
            "file://var/tok",
            "file:./token",
        ] {
            let err = SecretRef::parse(bad).err();
            let err = err.unwrap_or_else(|| panic!("{bad:?} was accepted"));
            let secretish = bad.trim().split_once(':').map_or(bad, |(_, r)| r);
            assert!(!err.contains(secretish.trim()), "{bad:?}: {err}");
        }
        for inline in [
            "hvs.CAESIJ-abc_def",
            "s.abcdef",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----",
            "1234:5678",
            "ab+cd",
        ] {
            assert!(SecretRef::parse(inline).unwrap().is_inline(), "{inline:?}");
        }
        assert_eq!(
            SecretRef::parse("file:///run/secrets/t")
                .unwrap()
                .to_string(),
            "file:/run/secrets/t"
        );
    }

    #[test]
    fn files_lose_one_trailing_newline_and_errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s.abc\n").unwrap();
        let got = SecretRef::file(&path).resolve("vault.auth.token").unwrap();
        assert_eq!(got.expose_secret(), "s.abc");
        let missing = SecretRef::file(dir.path().join("nope"))
            .resolve("vault.auth.token")
            .unwrap_err();
        assert_eq!(missing.kind(), kms_core::ErrorKind::Configuration);
        assert!(
            missing.message().contains("`vault.auth.token`"),
            "{missing}"
        );
        let unset = SecretRef::env("KMS_TEST_SURELY_UNSET_VARIABLE_4711")
            .resolve("aws.secret_access_key")
            .unwrap_err();
        assert!(
            unset
                .message()
                .contains("KMS_TEST_SURELY_UNSET_VARIABLE_4711")
                && unset.message().contains("not set"),
            "{unset}"
        );
    }

    #[test]
    fn an_endless_file_is_an_error_not_a_hang() {
        let r = SecretRef::file("/dev/zero");
        let e = r.resolve_bytes("envelope.master_key").unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
        assert!(e.to_string().contains("envelope.master_key"), "{e}");
    }
}
