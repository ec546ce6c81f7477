//! The per-service names index that makes `list` possible, and how it is kept consistent.
//!
//! Keyrings cannot list a service's entries cheaply (or at all), so every service keeps its key
//! names in a chain of extra entries, the index *shards*: the account [`INDEX_ACCOUNT`]
//! (`#kms-index`) for shard 0, then `#kms-index.1`, `#kms-index.2`, … (`#` is outside the
//! [`KeyName`] alphabet, so no key can collide with them). Each shard holds a sorted list of
//! names as JSON, `{"v":1,"names":["a","b/c"]}`, names only, never values, and is at most as
//! large as the backend's largest value (32767 bytes on the kernel keyring); shard 0 also
//! holds the length of the chain (`"shards":3`). A new shard is chained when the others are
//! full, up to [`MAX_INDEX_SHARDS`]: it is written first, then shard 0's length, so a reader
//! never sees a length that names a shard not yet written. A service therefore holds as many
//! keys as the platform quota allows; a full index fails the `store` with
//! [`ErrorKind::Unsupported`] naming that limit. `list` reads shard 0, then the shards its
//! length names; a shard missing from the chain (deleted by hand or by another program), or
//! a missing shard 0 while shard 1 exists, makes the index corrupt (below) instead of
//! silently dropping the names it held.
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
//! A shard that does not parse, is missing from the chain, or is claimed by more than one
//! entry (another program wrote a second one) makes `list` and `health` fail with
//! [`ErrorKind::InvalidData`]; a repair deletes every entry of a doubly claimed shard first. The next `store` or `remove` rebuilds the whole index from the
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

/// The error of a corrupt index entry `account`.
fn corrupt_entry(account: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidData,
        format!(
            "the keyring index entry {account} is corrupt ({why}); the next store or remove \
             rebuilds the index from the keys found in the keyring"
        ),
    )
    .with_backend(BACKEND)
}

/// The names held in one index shard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Shard {
    pub(crate) names: BTreeSet<String>,
}

impl Shard {
    /// Parses the bytes of an index shard, and the chain length it records (shard 0 only;
    /// `None` if absent); corrupt data is [`ErrorKind::InvalidData`].
    pub(crate) fn decode(account: &str, bytes: &[u8]) -> Result<(Self, Option<usize>)> {
        let corrupt = |why: String| corrupt_entry(account, &why);
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
        let length = match value.get("shards") {
            None => None,
            Some(n) => match n.as_u64().and_then(|n| usize::try_from(n).ok()) {
                Some(n) if (1..=MAX_INDEX_SHARDS).contains(&n) => Some(n),
                _ => {
                    return Err(corrupt(
                        "the chain length is not 1 to MAX_INDEX_SHARDS".into(),
                    ));
                }
            },
        };
        Ok((Self { names }, length))
    }

    /// The bytes of the shard; `length` (the chain length) is written into shard 0.
    pub(crate) fn encode(&self, length: Option<usize>) -> Vec<u8> {
        match length {
            Some(n) => serde_json::json!({ "v": 1, "shards": n, "names": self.names }),
            None => serde_json::json!({ "v": 1, "names": self.names }),
        }
        .to_string()
        .into_bytes()
    }
}

/// Decodes the bytes of index shard 0 into its names and chain length: the entry point of
/// the fuzz targets (`fuzz/`), not an API.
#[doc(hidden)]
pub fn decode_shard(bytes: &[u8]) -> Result<(BTreeSet<String>, Option<usize>)> {
    Shard::decode(INDEX_ACCOUNT, bytes).map(|(shard, length)| (shard.names, length))
}

/// Encodes names and a chain length as index shard bytes (the inverse of [`decode_shard`]).
#[doc(hidden)]
pub fn encode_shard(names: &BTreeSet<String>, length: Option<usize>) -> Vec<u8> {
    Shard {
        names: names.clone(),
    }
    .encode(length)
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
    /// Shards held by more than one entry (written outside this store): deleted by a repair.
    ambiguous: Vec<usize>,
    /// Whether a shard named by the chain (or shard 0) was missing.
    gap: bool,
    budget: usize,
}

/// How to undo one index change.
#[derive(Debug)]
pub(crate) struct Undo {
    shard: usize,
    before: Option<Shard>,
}

impl Index {
    /// Reads shard 0, then the shards its chain length names (without a length, and after a
    /// corrupt or missing shard 0, every shard up to the first missing one). Corrupt and
    /// missing shards are recorded, not fatal.
    ///
    /// A reader holds no lock: a writer that shortens the chain (writes shard 0's new length,
    /// then deletes the last shard) or rebuilds it (later shards first) can make one read see
    /// a missing shard. A gap is therefore read twice before it counts as corruption.
    pub(crate) fn read(accounts: &impl Accounts, budget: usize) -> Result<Self> {
        let first = Self::read_once(accounts, budget)?;
        if first.gap {
            return Self::read_once(accounts, budget);
        }
        Ok(first)
    }

    fn read_once(accounts: &impl Accounts, budget: usize) -> Result<Self> {
        let mut index = Self {
            shards: Vec::new(),
            corrupt: None,
            present: 0,
            ambiguous: Vec::new(),
            gap: false,
            budget,
        };
        let length = match index.read_shard(accounts, 0)? {
            Some(bytes) => {
                index.present = 1;
                match Shard::decode(INDEX_ACCOUNT, &bytes) {
                    Ok((shard, length)) => {
                        index.shards.push(shard);
                        length
                    }
                    Err(e) => {
                        index.shards.push(Shard::default());
                        index.corrupt.get_or_insert(e);
                        None
                    }
                }
            }
            None => {
                // An empty index, unless shard 0 alone was lost.
                if accounts.read(&shard_account(1))?.is_none() {
                    return Ok(index);
                }
                index.shards.push(Shard::default());
                index.gap = true;
                index.corrupt = Some(corrupt_entry(
                    INDEX_ACCOUNT,
                    &format!("it is missing while {} exists", shard_account(1)),
                ));
                None
            }
        };
        let last = length.unwrap_or(MAX_INDEX_SHARDS);
        for i in 1..last {
            let account = shard_account(i);
            let Some(bytes) = index.read_shard(accounts, i)? else {
                if length.is_none() {
                    break;
                }
                index.gap = true;
                index.shards.push(Shard::default());
                index.corrupt.get_or_insert_with(|| {
                    corrupt_entry(
                        &account,
                        &format!("it is missing from a chain of {last} index entries"),
                    )
                });
                continue;
            };
            index.present = i + 1;
            match Shard::decode(&account, &bytes) {
                Ok((shard, _)) => index.shards.push(shard),
                Err(e) => {
                    index.shards.push(Shard::default());
                    index.corrupt.get_or_insert(e);
                }
            }
        }
        index.present = index.present.max(index.shards.len());
        Ok(index)
    }

    /// The bytes of shard `i`. Two or more entries claiming it (one written outside this
    /// store, e.g. by `secret-tool`) make it corrupt: an empty entry that does not parse, to be
    /// deleted and rewritten by the next repair.
    fn read_shard(&mut self, accounts: &impl Accounts, i: usize) -> Result<Option<Vec<u8>>> {
        match accounts.read(&shard_account(i)) {
            Err(e) if e.kind() == ErrorKind::Conflict => {
                self.ambiguous.push(i);
                self.corrupt.get_or_insert_with(|| {
                    corrupt_entry(
                        &shard_account(i),
                        &format!("more than one keyring entry claims it: {}", e.message()),
                    )
                });
                Ok(Some(Vec::new()))
            }
            read => read,
        }
    }

    /// The chain length shard `i` records: the number of shards for shard 0, none for others.
    fn length_at(&self, i: usize) -> Option<usize> {
        (i == 0).then_some(self.shards.len())
    }

    /// Whether `shard` fits at position `i` (shard 0 with room for the largest length).
    fn fits(&self, i: usize, shard: &Shard) -> bool {
        shard.encode((i == 0).then_some(MAX_INDEX_SHARDS)).len() <= self.budget
    }

    /// Writes shard `i` as held in memory.
    fn write_shard(&self, accounts: &impl Accounts, i: usize) -> Result<()> {
        accounts.write(&shard_account(i), &self.shards[i].encode(self.length_at(i)))
    }

    /// Whether no index entry exists at all (and none is corrupt).
    pub(crate) fn is_absent(&self) -> bool {
        self.present == 0 && self.corrupt.is_none()
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
        self.rebuild(accounts, names)?;
        tracing::warn!(service, error = %error, keys = self.all_names().len(), "rebuilt a corrupt keyring index");
        Ok(true)
    }

    /// When no index entry exists at all (a new service, or the whole index deleted by hand)
    /// yet the platform finds keys of the service, writes an index of them, so that the names
    /// of a deleted index come back with the next write instead of staying unlisted for good.
    /// Returns whether it wrote one.
    pub(crate) fn restore_if_absent(
        &mut self,
        accounts: &impl Accounts,
        service: &str,
    ) -> Result<bool> {
        if !self.is_absent() {
            return Ok(false);
        }
        let names = match accounts.find_names()? {
            Some(found) if !found.is_empty() => found,
            _ => return Ok(false),
        };
        self.rebuild(accounts, names)?;
        tracing::warn!(
            service,
            keys = self.all_names().len(),
            "the keyring index was missing; rebuilt it from the keys found in the keyring"
        );
        Ok(true)
    }

    /// Replaces the whole index by one holding `names`.
    fn rebuild(&mut self, accounts: &impl Accounts, names: BTreeSet<String>) -> Result<()> {
        let mut shards: Vec<Shard> = vec![Shard::default()];
        for name in names {
            let i = shards.len() - 1;
            let mut grown = shards[i].clone();
            grown.names.insert(name.clone());
            if self.fits(i, &grown) {
                shards[i] = grown;
            } else {
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
        // Every entry of a shard claimed twice goes, so that the writes below are unambiguous.
        for i in std::mem::take(&mut self.ambiguous) {
            accounts.delete(&shard_account(i))?;
        }
        let old_present = self.present;
        self.shards = shards;
        self.present = self.shards.len();
        // Later shards first, shard 0 (with the new length) last.
        for i in (0..self.shards.len()).rev() {
            self.write_shard(accounts, i)?;
        }
        for i in self.shards.len()..old_present {
            accounts.delete(&shard_account(i))?;
        }
        Ok(())
    }

    fn check_fits(&self, shard: &Shard, position: usize) -> Result<()> {
        if position >= MAX_INDEX_SHARDS {
            return Err(full(format!(
                "all {MAX_INDEX_SHARDS} index entries (MAX_INDEX_SHARDS) of {} bytes are full",
                self.budget
            )));
        }
        if !self.fits(position, shard) {
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
        for i in 0..self.shards.len() {
            let mut grown = self.shards[i].clone();
            grown.names.insert(name.to_owned());
            if self.fits(i, &grown) {
                let before = std::mem::replace(&mut self.shards[i], grown);
                if let Err(e) = self.write_shard(accounts, i) {
                    self.shards[i] = before;
                    return Err(e);
                }
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
        // The new shard first, then shard 0's length that makes it part of the chain.
        self.shards.push(shard);
        if let Err(e) = self.write_shard(accounts, i) {
            self.shards.pop();
            return Err(e);
        }
        self.present = self.present.max(i + 1);
        if i > 0
            && let Err(e) = self.write_shard(accounts, 0)
        {
            self.shards.pop();
            // Past the recorded length, a left-over shard is never read and is overwritten
            // by the next new shard.
            let _ = accounts.delete(&shard_account(i));
            return Err(e);
        }
        Ok(Some(Undo {
            shard: i,
            before: None,
        }))
    }

    /// Removes `name` (writing one shard, possibly empty), if it is listed; [`compact`]
    /// (Self::compact) drops empty shards at the end of the chain afterwards.
    pub(crate) fn remove(&mut self, accounts: &impl Accounts, name: &str) -> Result<Option<Undo>> {
        let Some(i) = self.shards.iter().position(|s| s.names.contains(name)) else {
            return Ok(None);
        };
        let mut shrunk = self.shards[i].clone();
        shrunk.names.remove(name);
        let before = std::mem::replace(&mut self.shards[i], shrunk);
        if let Err(e) = self.write_shard(accounts, i) {
            self.shards[i] = before;
            return Err(e);
        }
        Ok(Some(Undo {
            shard: i,
            before: Some(before),
        }))
    }

    /// Drops empty shards at the end of the chain (after a successful remove): shard 0's
    /// length first, then the entry (all of it when shard 0 itself is empty and alone). Best
    /// effort: an empty shard left behind costs one entry and is reused by the next `add`.
    pub(crate) fn compact(&mut self, accounts: &impl Accounts) {
        while self.shards.last().is_some_and(|s| s.names.is_empty()) {
            let i = self.shards.len() - 1;
            if i == 0 {
                if accounts.delete(INDEX_ACCOUNT).is_ok() {
                    self.shards.clear();
                    self.present = 0;
                }
                return;
            }
            let last = self.shards.pop().expect("not empty");
            if self.write_shard(accounts, 0).is_err() {
                self.shards.push(last);
                return;
            }
            // Past the recorded length a left-over entry is never read.
            let _ = accounts.delete(&shard_account(i));
        }
    }

    /// Puts back the shard an [`add`](Self::add) or [`remove`](Self::remove) changed (for a
    /// new shard: shard 0's length first, then the entry).
    pub(crate) fn undo(&mut self, accounts: &impl Accounts, undo: Undo) -> Result<()> {
        match undo.before {
            Some(shard) => {
                let now = std::mem::replace(&mut self.shards[undo.shard], shard);
                if let Err(e) = self.write_shard(accounts, undo.shard) {
                    self.shards[undo.shard] = now;
                    return Err(e);
                }
            }
            None if undo.shard == 0 => {
                accounts.delete(INDEX_ACCOUNT)?;
                self.shards.clear();
            }
            None => {
                let added = self.shards.pop().expect("the added shard is the last");
                if let Err(e) = self.write_shard(accounts, 0) {
                    self.shards.push(added);
                    return Err(e);
                }
                let _ = accounts.delete(&shard_account(undo.shard));
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
            Shard::decode(INDEX_ACCOUNT, &shard.encode(None)).unwrap(),
            (shard.clone(), None)
        );
        assert_eq!(
            Shard::decode(INDEX_ACCOUNT, &shard.encode(Some(3))).unwrap(),
            (shard, Some(3))
        );
    }

    #[test]
    fn corrupt_shard_is_invalid_data() {
        for bad in [
            &b"not json"[..],
            b"{\"v\":2,\"names\":[]}",
            b"{\"v\":1}",
            b"{\"v\":1,\"names\":[\"../x\"]}",
            b"{\"v\":1,\"shards\":0,\"names\":[]}",
            b"{\"v\":1,\"shards\":1025,\"names\":[]}",
        ] {
            let err = Shard::decode(INDEX_ACCOUNT, bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidData, "{bad:?}");
            assert!(err.message().contains("rebuilds"), "{err}");
        }
    }

    /// Shards as a concurrent writer leaves them between two reads: the first read sees
    /// shard 0 naming 3 shards and shard 2 already deleted, the second the shortened chain.
    struct Shortening {
        reads: std::cell::Cell<usize>,
    }

    impl Accounts for Shortening {
        fn read(&self, account: &str) -> Result<Option<Vec<u8>>> {
            let pass = self.reads.get() / 3;
            self.reads.set(self.reads.get() + 1);
            let shard = |names: &[&str]| Shard {
                names: names.iter().map(|n| n.to_string()).collect(),
            };
            Ok(match (account, pass) {
                (INDEX_ACCOUNT, 0) => Some(shard(&["a"]).encode(Some(3))),
                (INDEX_ACCOUNT, _) => Some(shard(&["a"]).encode(Some(2))),
                ("#kms-index.1", _) => Some(shard(&["b"]).encode(None)),
                _ => None,
            })
        }
        fn write(&self, _: &str, _: &[u8]) -> Result<()> {
            unreachable!("a read writes nothing")
        }
        fn delete(&self, _: &str) -> Result<()> {
            unreachable!("a read deletes nothing")
        }
        fn find_names(&self) -> Result<Option<BTreeSet<String>>> {
            Ok(None)
        }
    }

    #[test]
    fn a_chain_shortened_during_a_read_is_not_corrupt() {
        let accounts = Shortening {
            reads: std::cell::Cell::new(0),
        };
        let index = Index::read(&accounts, 4096).unwrap();
        assert!(index.corrupt().is_none(), "{:?}", index.corrupt());
        assert_eq!(
            index.names().unwrap(),
            BTreeSet::from(["a".to_owned(), "b".to_owned()])
        );
    }

    /// Fixed shard bytes by account.
    struct Fixed(Vec<(String, Vec<u8>)>);

    impl Accounts for Fixed {
        fn read(&self, account: &str) -> Result<Option<Vec<u8>>> {
            Ok(self
                .0
                .iter()
                .find(|(a, _)| a == account)
                .map(|(_, b)| b.clone()))
        }
        fn write(&self, _: &str, _: &[u8]) -> Result<()> {
            unreachable!("a read writes nothing")
        }
        fn delete(&self, _: &str) -> Result<()> {
            unreachable!("a read deletes nothing")
        }
        fn find_names(&self) -> Result<Option<BTreeSet<String>>> {
            Ok(None)
        }
    }

    /// An index written before shard 0 recorded the chain length is read up to its first
    /// missing entry, as it was written.
    #[test]
    fn an_index_without_a_chain_length_is_read_to_its_first_gap() {
        let shard = |n: &str| Shard {
            names: BTreeSet::from([n.to_owned()]),
        };
        let accounts = Fixed(vec![
            (shard_account(0), shard("a").encode(None)),
            (shard_account(1), shard("b").encode(None)),
            (shard_account(3), shard("d").encode(None)),
        ]);
        let index = Index::read(&accounts, 4096).unwrap();
        assert!(index.corrupt().is_none());
        assert_eq!(
            index.names().unwrap(),
            BTreeSet::from(["a".to_owned(), "b".to_owned()])
        );
        // With a length, the same gap is corruption.
        let accounts = Fixed(vec![
            (shard_account(0), shard("a").encode(Some(4))),
            (shard_account(1), shard("b").encode(None)),
            (shard_account(3), shard("d").encode(None)),
        ]);
        let e = Index::read(&accounts, 4096).unwrap().names().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidData);
        assert!(e.message().contains("#kms-index.2"), "{e}");
    }

    #[test]
    fn shard_accounts_are_not_key_names() {
        assert_eq!(shard_account(0), INDEX_ACCOUNT);
        assert_eq!(shard_account(3), "#kms-index.3");
        assert!(KeyName::new(shard_account(3)).is_err());
        assert!(is_index_account(&shard_account(7)));
    }
}
