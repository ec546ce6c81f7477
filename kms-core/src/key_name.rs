//! Validated key names and list prefixes.
//!
//! A key name becomes a Vault path, an AWS secret id and a keyring account, so it is checked
//! once, when it is made, and a [`KeyName`] that exists is always safe to hand to a backend.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::{Error, ErrorKind};

/// The longest key name accepted, in bytes.
///
/// 256 leaves room under every backend's own limit once a backend adds its namespace prefix
/// (AWS Secrets Manager allows 512 characters, Vault paths are unbounded, keyring accounts vary).
pub const MAX_KEY_NAME_LEN: usize = 256;

/// A validated key name.
///
/// # The rules
///
/// - 1 to [`MAX_KEY_NAME_LEN`] bytes;
/// - only the safe set `A-Z a-z 0-9 - _ . + = @` and `/` as a segment separator: every
///   character AWS Secrets Manager allows in a secret name, all of which Vault and the OS
///   keyrings take too, so a secret named `db@prod` or `api+key` by another tool is readable;
///   none of them can change a path's meaning (backends percent-encode what their URLs need);
/// - no empty segment: no leading, trailing or doubled `/`;
/// - no `.` or `..` segment, so `../../sys/policy/root` can never reach a backend;
/// - (control characters, spaces and every non-ASCII character fall outside the safe set).
///
/// ```
/// use kms_core::KeyName;
///
/// let name = KeyName::new("payments/db/password")?;
/// assert_eq!(name.as_str(), "payments/db/password");
/// assert!(KeyName::new("../../sys/policy/root").is_err());
/// # Ok::<(), kms_core::Error>(())
/// ```
///
/// Cloning is cheap (the name is shared, `Arc<str>`): caches and single-flight maps key on
/// it without copying the string.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyName(Arc<str>);

impl KeyName {
    /// Validates `name` and makes a key name of it.
    ///
    /// # Errors
    ///
    /// An [`ErrorKind::InvalidInput`] error that says which rule the name breaks.
    pub fn new(name: impl AsRef<str>) -> Result<Self, Error> {
        let name = name.as_ref();
        validate(name, Kind::Name)?;
        Ok(Self(name.into()))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `/`-separated segments of the name.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// Whether this name starts with `prefix` (plain string prefix, see [`KeyPrefix`]).
    pub fn starts_with(&self, prefix: &KeyPrefix) -> bool {
        self.0.starts_with(prefix.as_str())
    }
}

impl fmt::Debug for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KeyName").field(&&*self.0).finish()
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl AsRef<str> for KeyName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for KeyName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl FromStr for KeyName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl TryFrom<&str> for KeyName {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl TryFrom<String> for KeyName {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        validate(&s, Kind::Name)?;
        Ok(Self(s.into()))
    }
}

/// A validated prefix for [`KeyStore::list`](crate::KeyStore::list).
///
/// Listing matches names by plain string prefix: `app/d` matches `app/db` and `app/dev/x`;
/// `app/` matches everything under `app`. The empty prefix ([`KeyPrefix::all`]) matches every
/// name. A prefix follows the [`KeyName`] rules, except that it may be empty and may end in `/`.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyPrefix(Box<str>);

impl KeyPrefix {
    /// Validates `prefix` and makes a list prefix of it.
    ///
    /// # Errors
    ///
    /// An [`ErrorKind::InvalidInput`] error that says which rule the prefix breaks.
    pub fn new(prefix: impl AsRef<str>) -> Result<Self, Error> {
        let prefix = prefix.as_ref();
        validate(prefix, Kind::Prefix)?;
        Ok(Self(prefix.into()))
    }

    /// The empty prefix: every key.
    pub fn all() -> Self {
        Self::default()
    }

    /// The prefix as a string slice (empty for [`KeyPrefix::all`]).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the empty prefix.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The part of the prefix up to and including its last `/` (the "directory" a
    /// hierarchical backend such as Vault lists first), empty if it has none.
    pub fn directory(&self) -> &str {
        match self.0.rfind('/') {
            Some(i) => &self.0[..=i],
            None => "",
        }
    }
}

impl fmt::Debug for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KeyPrefix").field(&&*self.0).finish()
    }
}

impl fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for KeyPrefix {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl From<KeyName> for KeyPrefix {
    fn from(name: KeyName) -> Self {
        Self(Box::from(&*name.0))
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Name,
    Prefix,
}

fn is_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '+' | '=' | '@')
}

fn invalid(what: Kind, reason: impl fmt::Display) -> Error {
    let what = match what {
        Kind::Name => "key name",
        Kind::Prefix => "key prefix",
    };
    Error::new(ErrorKind::InvalidInput, format!("invalid {what}: {reason}"))
}

fn validate(s: &str, kind: Kind) -> Result<(), Error> {
    if s.is_empty() {
        return match kind {
            Kind::Name => Err(invalid(kind, "is empty")),
            Kind::Prefix => Ok(()),
        };
    }
    if s.len() > MAX_KEY_NAME_LEN {
        return Err(invalid(
            kind,
            format_args!(
                "is {} bytes long, the maximum is {MAX_KEY_NAME_LEN}",
                s.len()
            ),
        ));
    }
    if let Some((i, c)) = s.char_indices().find(|&(_, c)| !is_safe(c)) {
        // Control characters are named by code point so a log line never carries them raw.
        let shown = if c.is_control() || !c.is_ascii_graphic() {
            format!("U+{:04X}", c as u32)
        } else {
            format!("'{c}'")
        };
        return Err(invalid(
            kind,
            format_args!(
                "character {shown} at byte {i} is outside the safe set [A-Za-z0-9._+=@-/]"
            ),
        ));
    }
    if s.starts_with('/') {
        return Err(invalid(kind, "starts with '/'"));
    }
    if kind == Kind::Name && s.ends_with('/') {
        return Err(invalid(kind, "ends with '/'"));
    }
    if s.contains("//") {
        return Err(invalid(kind, "contains an empty segment ('//')"));
    }
    let segments = s.split('/');
    for segment in segments {
        if segment == "." || segment == ".." {
            return Err(invalid(
                kind,
                format_args!("contains a '{segment}' segment (path traversal)"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in [
            "a",
            "db",
            "app/db/password",
            "a.b-c_d",
            "v1.2/x",
            "...",
            ".hidden",
            "a/..b",
            "db@prod",
            "api+key",
            "team=payments/key",
            "user@example.com/token",
        ] {
            assert_eq!(KeyName::new(ok).unwrap().as_str(), ok, "{ok}");
        }
        let longest = "a".repeat(MAX_KEY_NAME_LEN);
        assert!(KeyName::new(&longest).is_ok());
    }

    #[test]
    fn rejects_bad_names_with_a_reason() {
        let cases = [
            ("", "is empty"),
            ("../../sys/policy/root", "path traversal"),
            ("a/../b", "path traversal"),
            ("a/./b", "path traversal"),
            ("..", "path traversal"),
            ("/abs", "starts with '/'"),
            ("dir/", "ends with '/'"),
            ("a//b", "empty segment"),
            ("a\nb", "U+000A"),
            ("a\0b", "U+0000"),
            ("with space", "U+0020"),
            ("semi;colon", "';'"),
            ("caf\u{e9}", "U+00E9"),
            ("a\\b", "'\\'"),
            ("a#b", "'#'"),
            ("a?b", "'?'"),
            ("a%2e", "'%'"),
            ("a:b", "':'"),
            ("a*b", "'*'"),
        ];
        for (bad, reason) in cases {
            let err = KeyName::new(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
            assert!(err.to_string().contains(reason), "{bad:?}: {err}");
        }
        let too_long = "a".repeat(MAX_KEY_NAME_LEN + 1);
        assert!(
            KeyName::new(too_long)
                .unwrap_err()
                .to_string()
                .contains("maximum is 256")
        );
    }

    #[test]
    fn prefixes_may_be_empty_or_end_in_slash() {
        assert!(KeyPrefix::new("").unwrap().is_empty());
        assert_eq!(KeyPrefix::new("app/").unwrap().directory(), "app/");
        assert_eq!(KeyPrefix::new("app/d").unwrap().directory(), "app/");
        assert_eq!(KeyPrefix::new("app").unwrap().directory(), "");
        assert!(KeyPrefix::new("../").is_err());
        assert!(KeyPrefix::new("/app").is_err());
        assert!(KeyPrefix::new("a//").is_err());
        let name = KeyName::new("app/db").unwrap();
        assert!(name.starts_with(&KeyPrefix::new("app/d").unwrap()));
        assert!(!name.starts_with(&KeyPrefix::new("app/x").unwrap()));
    }
}
