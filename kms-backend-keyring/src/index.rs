//! The per-service names index that makes `list` possible, and how it is kept consistent.
//!
//! Keyrings cannot list a service's entries cheaply (or at all), so every service keeps its key
//! names in a chain of extra entries, the index *shards*: the account [`INDEX_ACCOUNT`]
//! (`#kms-index`) for shard 0, then `#kms-index.1`, `#kms-index.2`, … (`#` is outside the
//! [`KeyName`] alphabet, so no key can collide with them). Each shard holds a sorted list of
//! names as JSON, `{"v":1,"names":["a","b/c"]}`, names only, never values, and is at most as
//! large as the backend's largest value (32767 bytes on the kernel keyring); a new shard is
//! chained when the others are full, up to [`MAX_INDEX_SHARDS`]. A service therefore holds
//! as many keys as the platform quota allows; a full index fails the `store` with
//! [`ErrorKind::Unsupported`] naming that limit. `list` reads shards from 0 until the first
//! missing one.
//!
//! # Consistency
//!
//! Every `store` and `remove` holds the index lock file (see the crate README) for its whole
//! read-modify-write, and changes the index **before** the entry, undoing the index change if
//! the entry write fails: a `store` or `remove` that returns an error leaves the key and the
//! index as they were (or its message says what it could not undo). Any number of stores, in
//! one process or many on one host, that share the lock file never lose an index update.
//! Writers that bypass the lock (other programs, stores with another lock file) can; the
//! entries themselves are never lost.
//!
//! # A corrupt index
//!
//! A shard that does not parse makes `list` and `health` fail with
//! [`ErrorKind::InvalidData`]. The next `store` or `remove` rebuilds the whole index from the
//! keys the platform can find for the service (the kernel keyring: every `user` key in the
//! session keyring and the keyrings linked into it whose description is
//! `keyring:<name>@<service>`; the Secret Service: every item whose `service` attribute is the
//! service). On a store that cannot search (macOS, Windows, a custom `keyring_core` store
//! without `search`) only the names in the shards that still parse are kept: the names held by
//! the corrupt shard drop out of listings (their values stay readable with `get`).

use std::collections::BTreeSet;

use kms_core::{Error, ErrorKind, KeyName, Result};

use crate::BACKEND;

/// The account of the first index shard. `#` is outside the [`KeyName`] alphabet, so no key
/// can collide with it; later shards are `#kms-index.1`, `#kms-index.2`, ….
pub const INDEX_ACCOUNT: &str = "#kms-index";

/// The most index shards a service may have (with 32767-byte shards and 256-byte names, about
/// 130,000 keys; the kernel's own per-user quota is usually reached long before).
pub const MAX_INDEX_SHARDS: usize = 1024;

/// The account of index shard `i`.
pub fn shard_account(i: usize) -> String {
    if i == 0 {
        INDEX_ACCOUNT.to_owned()
    } else {
        format!("{INDEX_ACCOUNT}.{i}")
    }
}

/// Whether `account` is one of the index shards (never a key).
pub(crate) fn is_index_account(account: &str) -> bool {
    account.starts_with('#')
}

/// The names held in one index shard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Shard {
    pub(crate) names: BTreeSet<String>,
}

impl Shard {
    /// Parses the bytes of an index shard; corrupt data is [`ErrorKind::InvalidData`].
    pub(crate) fn decode(account: &str, bytes: &[u8]) -> Result<Self> {
        let corrupt = |why: String| {
            Error::new(
                ErrorKind::InvalidData,
                format!(
                    "the keyring index entry {account} is corrupt ({why}); the next store or \
                     remove rebuilds the index from the keys found in the keyring"
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

    /// The bytes of the shard.
    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::json!({ "v": 1, "names": self.names })
            .to_string()
            .into_bytes()
    }
}

/// Reads, writes and searches the entries of one service (implemented by the store).
pub(crate) trait Accounts {
    /// The bytes of `account`, `None` if it does not exist.
    fn read(&self, account: &str) -> Result<Option<Vec<u8>>>;
    /// Creates or overwrites `account`.
    fn write(&self, account: &str, bytes: &[u8]) -> Result<()>;
    /// Deletes `account`; a missing one is not an error.
    fn delete(&self, account: &str) -> Result<()>;
    /// Every key name the platform holds for the service, `None` if it cannot search.
    fn find_names(&self) -> Result<Option<BTreeSet<String>>>;
}

/// The index of one service as read from its shards.
#[derive(Debug)]
pub(crate) struct Index {
    shards: Vec<Shard>,
    /// The first corrupt shard's error, if any.
    corrupt: Option<Error>,
    /// Shard entries present (parsed or not).
    present: usize,
    budget: usize,
}

/// How to undo one index change.
#[derive(Debug)]
pub(crate) struct Undo {
    shard: usize,
    before: Option<Shard>,
}

impl Index {
    /// Reads shards from 0 until the first missing one. Corrupt shards are recorded, not fatal.
    pub(crate) fn read(accounts: &impl Accounts, budget: usize) -> Result<Self> {
        let mut index = Self {
            shards: Vec::new(),
            corrupt: None,
            present: 0,
            budget,
        };
        for i in 0..MAX_INDEX_SHARDS {
            let account = shard_account(i);
            let Some(bytes) = accounts.read(&account)? else {
                break;
            };
            index.present += 1;
            match Shard::decode(&account, &bytes) {
                Ok(shard) => index.shards.push(shard),
                Err(e) => {
                    index.shards.push(Shard::default());
                    index.corrupt.get_or_insert(e);
                }
            }
        }
        Ok(index)
    }

    /// The error of the first corrupt shard.
    pub(crate) fn corrupt(&self) -> Option<&Error> {
        self.corrupt.as_ref()
    }

    /// Every name, or the corruption error.
    pub(crate) fn names(&self) -> Result<BTreeSet<String>> {
        if let Some(e) = &self.corrupt {
            return Err(e.clone());
        }
        Ok(self.all_names())
    }

    fn all_names(&self) -> BTreeSet<String> {
        self.shards
            .iter()
            .flat_map(|s| s.names.iter().cloned())
            .collect()
    }

    /// Replaces a corrupt index by one holding every name the platform finds for the service
    /// (or, if it cannot search, the names of the shards that still parse). Returns whether it
    /// rebuilt anything.
    pub(crate) fn repair(&mut self, accounts: &impl Accounts, service: &str) -> Result<bool> {
        let Some(error) = self.corrupt.take() else {
            return Ok(false);
        };
        let names = match accounts.find_names()? {
            Some(found) => found,
            None => {
                tracing::warn!(
                    service,
                    error = %error,
                    "rebuilding a corrupt keyring index without search: the names in the corrupt \
                     shard are no longer listed"
                );
                self.all_names()
            }
        };
        let mut shards: Vec<Shard> = vec![Shard::default()];
        for name in names {
            let last = shards.last_mut().expect("never empty");
            last.names.insert(name.clone());
            if last.encode().len() > self.budget {
                last.names.remove(&name);
                let shard = Shard {
                    names: BTreeSet::from([name]),
                };
                self.check_fits(&shard, shards.len())?;
                shards.push(shard);
            }
        }
        if shards.len() == 1 && shards[0].names.is_empty() {
            shards.clear();
        }
        for (i, shard) in shards.iter().enumerate() {
            accounts.write(&shard_account(i), &shard.encode())?;
        }
        for i in shards.len()..self.present {
            accounts.delete(&shard_account(i))?;
        }
        tracing::warn!(service, error = %error, keys = shards.iter().map(|s| s.names.len()).sum::<usize>(), "rebuilt a corrupt keyring index");
        self.present = shards.len();
        self.shards = shards;
        Ok(true)
    }

    fn check_fits(&self, shard: &Shard, position: usize) -> Result<()> {
        if position >= MAX_INDEX_SHARDS {
            return Err(full(format!(
                "all {MAX_INDEX_SHARDS} index entries (MAX_INDEX_SHARDS) of {} bytes are full",
                self.budget
            )));
        }
        if shard.encode().len() > self.budget {
            return Err(full(format!(
                "one name does not fit in an index entry of {} bytes (the backend's largest \
                 value)",
                self.budget
            )));
        }
        Ok(())
    }

    /// Adds `name` (writing one shard), unless it is already listed.
    pub(crate) fn add(&mut self, accounts: &impl Accounts, name: &str) -> Result<Option<Undo>> {
        if self.shards.iter().any(|s| s.names.contains(name)) {
            return Ok(None);
        }
        for (i, shard) in self.shards.iter().enumerate() {
            let mut grown = shard.clone();
            grown.names.insert(name.to_owned());
            if grown.encode().len() <= self.budget {
                accounts.write(&shard_account(i), &grown.encode())?;
                let before = std::mem::replace(&mut self.shards[i], grown);
                return Ok(Some(Undo {
                    shard: i,
                    before: Some(before),
                }));
            }
        }
        let shard = Shard {
            names: BTreeSet::from([name.to_owned()]),
        };
        let i = self.shards.len();
        self.check_fits(&shard, i)?;
        accounts.write(&shard_account(i), &shard.encode())?;
        self.shards.push(shard);
        self.present = self.present.max(i + 1);
        Ok(Some(Undo {
            shard: i,
            before: None,
        }))
    }

    /// Removes `name` (writing or deleting one shard), if it is listed.
    pub(crate) fn remove(&mut self, accounts: &impl Accounts, name: &str) -> Result<Option<Undo>> {
        let Some(i) = self.shards.iter().position(|s| s.names.contains(name)) else {
            return Ok(None);
        };
        let mut shrunk = self.shards[i].clone();
        shrunk.names.remove(name);
        if shrunk.names.is_empty() && i + 1 == self.shards.len() {
            accounts.delete(&shard_account(i))?;
        } else {
            accounts.write(&shard_account(i), &shrunk.encode())?;
        }
        let before = std::mem::replace(&mut self.shards[i], shrunk);
        Ok(Some(Undo {
            shard: i,
            before: Some(before),
        }))
    }

    /// Deletes empty shards at the end of the chain (after a successful remove). Best effort:
    /// an empty shard left behind costs one entry and is reused by the next `add`.
    pub(crate) fn compact(&mut self, accounts: &impl Accounts) {
        while self.shards.last().is_some_and(|s| s.names.is_empty()) {
            let i = self.shards.len() - 1;
            if accounts.delete(&shard_account(i)).is_err() {
                return;
            }
            self.shards.pop();
            self.present = self.present.min(i);
        }
    }

    /// Puts back the shard an [`add`](Self::add) or [`remove`](Self::remove) changed.
    pub(crate) fn undo(&mut self, accounts: &impl Accounts, undo: Undo) -> Result<()> {
        let account = shard_account(undo.shard);
        match undo.before {
            Some(shard) if !shard.names.is_empty() || undo.shard + 1 < self.shards.len() => {
                accounts.write(&account, &shard.encode())?;
                self.shards[undo.shard] = shard;
            }
            _ => {
                accounts.delete(&account)?;
                self.shards[undo.shard] = Shard::default();
            }
        }
        Ok(())
    }
}

fn full(why: String) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!(
            "the keyring index of this service is full: {why}; remove keys or use another service"
        ),
    )
    .with_backend(BACKEND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut shard = Shard::default();
        shard.names.insert("a/b".into());
        shard.names.insert("c".into());
        assert_eq!(
            Shard::decode(INDEX_ACCOUNT, &shard.encode()).unwrap(),
            shard
        );
    }

    #[test]
    fn corrupt_shard_is_invalid_data() {
        for bad in [
            &b"not json"[..],
            b"{\"v\":2,\"names\":[]}",
            b"{\"v\":1}",
            b"{\"v\":1,\"names\":[\"../x\"]}",
        ] {
            let err = Shard::decode(INDEX_ACCOUNT, bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidData, "{bad:?}");
            assert!(err.message().contains("rebuilds"), "{err}");
        }
    }

    #[test]
    fn shard_accounts_are_not_key_names() {
        assert_eq!(shard_account(0), INDEX_ACCOUNT);
        assert_eq!(shard_account(3), "#kms-index.3");
        assert!(KeyName::new(shard_account(3)).is_err());
        assert!(is_index_account(&shard_account(7)));
    }
}
