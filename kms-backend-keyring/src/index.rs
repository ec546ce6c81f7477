//! The per-service index entry that makes `list` possible, and the lock that guards it.
//!
//! Keyrings cannot enumerate their entries, so every service keeps one extra entry, under the
//! account [`INDEX_ACCOUNT`] (a name no [`KeyName`] can take), holding the sorted list of key
//! names as JSON: `{"v":1,"names":["a","b/c"]}`. Names only, never values.
//!
//! # Concurrency guarantee
//!
//! Every `store` and `remove` takes an exclusive advisory lock on a lock file (`flock` on Unix,
//! `LockFileEx` on Windows, through [`std::fs::File::lock`]) for the whole read-modify-write of
//! the entry and the index. Any number of [`KeyringStore`](crate::KeyringStore)s, in one process
//! or many on the same host, that use the same lock file therefore never lose an index update.
//! Writers that bypass the lock (another program, or a store configured with a different lock
//! file) can lose index updates; the entries themselves are never lost.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::path::Path;

use kms_core::{Error, ErrorKind, KeyName, Result};

use crate::BACKEND;

/// The account of the index entry. `#` is outside the [`KeyName`] alphabet, so no key can
/// collide with it.
pub const INDEX_ACCOUNT: &str = "#kms-index";

/// The names held in a service's index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Index {
    pub(crate) names: BTreeSet<String>,
}

impl Index {
    /// Parses the bytes of an index entry; corrupt data is [`ErrorKind::InvalidData`].
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt = |why: String| {
            Error::new(
                ErrorKind::InvalidData,
                format!(
                    "the keyring index entry ({INDEX_ACCOUNT}) is corrupt ({why}); the next store \
                     or remove rebuilds it"
                ),
            )
            .with_backend(BACKEND)
        };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        if value.get("v").and_then(serde_json::Value::as_u64) != Some(1) {
            return Err(corrupt("unknown version".into()));
        }
        let list = value
            .get("names")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| corrupt("no names array".into()))?;
        let mut names = BTreeSet::new();
        for n in list {
            let n = n
                .as_str()
                .ok_or_else(|| corrupt("a name is not a string".into()))?;
            KeyName::new(n).map_err(|_| corrupt("a name is not a valid key name".into()))?;
            names.insert(n.to_owned());
        }
        Ok(Self { names })
    }

    /// The bytes of the index entry.
    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::json!({ "v": 1, "names": self.names })
            .to_string()
            .into_bytes()
    }
}

/// An exclusive lock on the index lock file, released on drop.
pub(crate) struct IndexLock {
    file: File,
}

impl IndexLock {
    /// Blocks until the lock on `path` is held (creating the file if needed).
    pub(crate) fn acquire(path: &Path) -> Result<Self> {
        let unavailable = |e: std::io::Error| {
            Error::new(
                ErrorKind::Unavailable,
                format!(
                    "cannot lock the keyring index lock file {}: {e}",
                    path.display()
                ),
            )
            .with_backend(BACKEND)
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(unavailable)?;
        file.lock().map_err(unavailable)?;
        Ok(Self { file })
    }
}

impl Drop for IndexLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlock explicitly to release it promptly.
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut index = Index::default();
        index.names.insert("a/b".into());
        index.names.insert("c".into());
        assert_eq!(Index::decode(&index.encode()).unwrap(), index);
    }

    #[test]
    fn corrupt_index_is_invalid_data() {
        for bad in [
            &b"not json"[..],
            b"{\"v\":2,\"names\":[]}",
            b"{\"v\":1}",
            b"{\"v\":1,\"names\":[\"../x\"]}",
        ] {
            let err = Index::decode(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidData, "{bad:?}");
            assert!(err.message().contains("rebuilds"), "{err}");
        }
    }
}
