//! [`Change`]: what one invalidation message says, and the checks a received one must pass.
//!
//! A message names a change; it never carries a value. The wire form is a small JSON object
//! with exactly these fields (`store`, `key`, `version`, `kind`, `origin`, `seq`, `at`) and a
//! size limit, so a message cannot smuggle a secret: one with any other field (a `value`, a
//! `data` …), a foreign store, a key that is not a valid name, or more than
//! [`MAX_MESSAGE_LEN`] bytes is ignored and counted by reason ([`IgnoreReason`]).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use kms_core::{KeyName, MAX_KEY_NAME_LEN};
use serde::{Deserialize, Serialize};

/// The largest message accepted, in bytes: room for the longest key name, a long version id
/// and an origin, and far too small for a secret of any use.
pub const MAX_MESSAGE_LEN: usize = 1024;

/// The longest version id accepted (AWS version ids are 32–64 characters, Vault's are numbers).
pub const MAX_VERSION_LEN: usize = 128;

/// The longest origin accepted (an instance name).
pub const MAX_ORIGIN_LEN: usize = 128;

/// Field names that say a message carries a value: such a message is refused outright, and
/// counted apart from other malformed ones, because a publisher that sends them is leaking.
const VALUE_LIKE_FIELDS: [&str; 6] = ["value", "data", "secret", "payload", "plaintext", "bytes"];

/// What happened to the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A new version was written (a write, a rotation, a change seen by a watcher).
    Write,
    /// The key was removed.
    Remove,
}

impl ChangeKind {
    /// `"write"` or `"remove"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Write => "write",
            Self::Remove => "remove",
        }
    }
}

/// One change to one key of one store: the invalidation message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// The store's fleet id (the subject's store token).
    pub store: String,
    /// The key that changed.
    pub key: String,
    /// The version now current (`None` after a remove, or from a store without versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// What happened.
    pub kind: ChangeKind,
    /// Who published it (an instance name; for logs and loop detection only).
    pub origin: String,
    /// The publisher's own counter, increasing per publisher (for logs; ordering is the
    /// stream's sequence).
    pub seq: u64,
    /// When it was published, milliseconds since the Unix epoch (the lag histogram's start).
    pub at: u64,
}

/// Why a received message was ignored (a metric label: bounded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IgnoreReason {
    /// Longer than [`MAX_MESSAGE_LEN`].
    TooLarge,
    /// It has a field that would carry a value (`value`, `data`, `secret` …).
    ValueLike,
    /// It names another store than the one this subscriber follows.
    UnknownStore,
    /// Its key is not a valid key name (empty, too long, bad characters).
    BadKey,
    /// Not the expected JSON object, an unknown field, an over-long version or origin.
    Malformed,
}

impl IgnoreReason {
    /// A stable label: `"too_large"`, `"value_like"`, `"unknown_store"`, `"bad_key"`,
    /// `"malformed"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::ValueLike => "value_like",
            Self::UnknownStore => "unknown_store",
            Self::BadKey => "bad_key",
            Self::Malformed => "malformed",
        }
    }

    /// Every reason (to pre-register metric label sets).
    pub const ALL: [IgnoreReason; 5] = [
        Self::TooLarge,
        Self::ValueLike,
        Self::UnknownStore,
        Self::BadKey,
        Self::Malformed,
    ];
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Milliseconds since the Unix epoch now.
pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Change {
    /// A change of `key` in `store`, stamped now.
    pub fn new(
        store: &str,
        key: &KeyName,
        version: Option<&str>,
        kind: ChangeKind,
        origin: &str,
        seq: u64,
    ) -> Self {
        Self {
            store: store.to_owned(),
            key: key.as_str().to_owned(),
            version: version.map(str::to_owned),
            kind,
            origin: origin.to_owned(),
            seq,
            at: now_millis(),
        }
    }

    /// The wire form (JSON).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads and checks a received message for the store `store`, returning the change and
    /// its key as a [`KeyName`].
    ///
    /// # Errors
    ///
    /// The [`IgnoreReason`] the message is ignored for.
    pub fn decode(bytes: &[u8], store: &str) -> Result<(Self, KeyName), IgnoreReason> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(IgnoreReason::TooLarge);
        }
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(bytes).map_err(|_| IgnoreReason::Malformed)?;
        if object
            .keys()
            .any(|field| VALUE_LIKE_FIELDS.contains(&field.to_ascii_lowercase().as_str()))
        {
            return Err(IgnoreReason::ValueLike);
        }
        let change: Self = serde_json::from_value(serde_json::Value::Object(object))
            .map_err(|_| IgnoreReason::Malformed)?;
        if change.store != store {
            return Err(IgnoreReason::UnknownStore);
        }
        if change.key.len() > MAX_KEY_NAME_LEN {
            return Err(IgnoreReason::BadKey);
        }
        let key = KeyName::new(&change.key).map_err(|_| IgnoreReason::BadKey)?;
        if change
            .version
            .as_ref()
            .is_some_and(|v| v.len() > MAX_VERSION_LEN)
            || change.origin.len() > MAX_ORIGIN_LEN
        {
            return Err(IgnoreReason::Malformed);
        }
        Ok((change, key))
    }

    /// The JetStream de-duplication id: store, key, kind and version, so every publisher of
    /// the same change (several watchers, a writer and a watcher) publishes it once within
    /// the stream's duplicate window.
    pub fn msg_id(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.store,
            self.key,
            self.kind.as_str(),
            self.version.as_deref().unwrap_or("-")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change() -> Change {
        Change::new(
            "app",
            &KeyName::new("db/password").unwrap(),
            Some("3"),
            ChangeKind::Write,
            "host-1",
            7,
        )
    }

    #[test]
    fn round_trips() {
        let c = change();
        let (back, key) = Change::decode(&c.encode(), "app").unwrap();
        assert_eq!(back, c);
        assert_eq!(key.as_str(), "db/password");
        assert_eq!(c.msg_id(), "app/db/password/write/3");
    }

    #[test]
    fn refuses_what_it_must() {
        let mut v: serde_json::Value = serde_json::from_slice(&change().encode()).unwrap();
        v["value"] = "hunter2".into();
        let bytes = serde_json::to_vec(&v).unwrap();
        assert_eq!(Change::decode(&bytes, "app"), Err(IgnoreReason::ValueLike));
        assert_eq!(
            Change::decode(&change().encode(), "other"),
            Err(IgnoreReason::UnknownStore)
        );
        let mut huge = change();
        huge.key = "k".repeat(600);
        assert_eq!(
            Change::decode(&huge.encode(), "app"),
            Err(IgnoreReason::BadKey)
        );
        huge.key = "k".repeat(2000);
        assert_eq!(
            Change::decode(&huge.encode(), "app"),
            Err(IgnoreReason::TooLarge)
        );
        assert_eq!(
            Change::decode(b"not json", "app"),
            Err(IgnoreReason::Malformed)
        );
        let mut extra: serde_json::Value = serde_json::from_slice(&change().encode()).unwrap();
        extra["colour"] = "red".into();
        let bytes = serde_json::to_vec(&extra).unwrap();
        assert_eq!(Change::decode(&bytes, "app"), Err(IgnoreReason::Malformed));
    }
}
