//! Looks at what the cache holds without reading it: the version an entry holds and the keys
//! held, for fleet invalidation (neither counts as a read, moves the policy or touches
//! time-to-idle).

use std::sync::Arc;

use kms_core::KeyName;

use super::Core;
use super::entry::Answer;

impl Core {
    /// `None` if nothing is held for `key`; `Some(version)` for a held value (fresh or
    /// stale), whose version may itself be unknown (`Some(None)`). A remembered "not found"
    /// is `Some(None)` too: it is a cached answer whose version is no version.
    pub(crate) fn peek_version(&self, key: &KeyName) -> Option<Option<Arc<str>>> {
        self.index.pin().get(key).map(|entry| match &entry.answer {
            Answer::Found(secret) => secret.meta.version.clone(),
            Answer::Missing => None,
        })
    }

    /// Every key held now (fresh or stale).
    pub(crate) fn held_keys(&self) -> Vec<KeyName> {
        self.index.pin().keys().cloned().collect()
    }
}
