//! `diff`: which keys two stores hold, and whether their values agree.

use futures::StreamExt;
use kms_core::{Error, KeyName, KeyPrefix, KeyStore, StoredSecret};
use std::collections::BTreeMap;

use crate::compare::values_equal;
use crate::held::read_held;

/// The comparison of two stores under a prefix. Names only, never values.
#[derive(Clone, Debug, Default)]
pub struct DiffReport {
    /// Names only in the first store.
    pub only_in_a: Vec<KeyName>,
    /// Names only in the second store.
    pub only_in_b: Vec<KeyName>,
    /// Names in both with equal values.
    pub equal: Vec<KeyName>,
    /// Names in both with different values.
    pub different: Vec<KeyName>,
    /// Names whose values could not be read, with the error.
    pub failed: Vec<(KeyName, Error)>,
    /// Names a store lists but neither holds (listed, but `get` answers not found: a
    /// soft-deleted Vault KV v2 key); not a difference (see [`crate::held`]).
    pub not_held: Vec<KeyName>,
}

impl DiffReport {
    /// Both stores hold the same names with the same values.
    pub fn is_same(&self) -> bool {
        self.only_in_a.is_empty()
            && self.only_in_b.is_empty()
            && self.different.is_empty()
            && self.failed.is_empty()
    }
}

/// Compares the keys `a` and `b` hold under `prefix` (see [`crate::held`]: a listed key
/// that reads as not found is not held), `concurrency` keys at a time; values are compared
/// in constant time (see [`values_equal`]) and never kept.
///
/// # Errors
///
/// The listing of either store ([`kms_core::ErrorKind::Unsupported`] if one cannot list).
/// A key that cannot be read is reported in [`DiffReport::failed`].
pub async fn diff(
    a: &dyn KeyStore,
    b: &dyn KeyStore,
    prefix: &KeyPrefix,
    concurrency: usize,
) -> Result<DiffReport, Error> {
    let mut listed: BTreeMap<KeyName, (bool, bool)> = BTreeMap::new();
    for key in a.list(prefix).await? {
        listed.entry(key).or_default().0 = true;
    }
    for key in b.list(prefix).await? {
        listed.entry(key).or_default().1 = true;
    }
    let mut compared: Vec<(KeyName, Result<Held, Error>)> = futures::stream::iter(listed)
        .map(|(key, (in_a, in_b))| async move {
            let result =
                futures::try_join!(held_if_listed(a, &key, in_a), held_if_listed(b, &key, in_b))
                    .map(|(x, y)| Held::of(x, y));
            (key, result)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    compared.sort_by(|x, y| x.0.cmp(&y.0));
    let mut report = DiffReport::default();
    for (key, result) in compared {
        match result {
            Ok(Held::Equal) => report.equal.push(key),
            Ok(Held::Different) => report.different.push(key),
            Ok(Held::OnlyA) => report.only_in_a.push(key),
            Ok(Held::OnlyB) => report.only_in_b.push(key),
            Ok(Held::Neither) => report.not_held.push(key),
            Err(e) => report.failed.push((key, e)),
        }
    }
    Ok(report)
}

/// [`read_held`] for a store that lists `key`; `None` without a read for one that does not.
async fn held_if_listed(
    store: &dyn KeyStore,
    key: &KeyName,
    listed: bool,
) -> Result<Option<StoredSecret>, Error> {
    if listed {
        read_held(store, key).await
    } else {
        Ok(None)
    }
}

/// Where one name is held, values already compared (and dropped).
enum Held {
    Equal,
    Different,
    OnlyA,
    OnlyB,
    Neither,
}

impl Held {
    fn of(a: Option<StoredSecret>, b: Option<StoredSecret>) -> Self {
        match (a, b) {
            (Some(x), Some(y)) if values_equal(&x.value, &y.value) => Self::Equal,
            (Some(_), Some(_)) => Self::Different,
            (Some(_), None) => Self::OnlyA,
            (None, Some(_)) => Self::OnlyB,
            (None, None) => Self::Neither,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kms_core::{KeyStoreExt, MemoryStore};

    #[tokio::test]
    async fn sorts_names_into_the_four_groups() {
        let a = MemoryStore::new();
        let b = MemoryStore::new();
        a.put("p/same", "1").await.unwrap();
        b.put("p/same", "1").await.unwrap();
        a.put("p/changed", "1").await.unwrap();
        b.put("p/changed", "2").await.unwrap();
        a.put("p/only-a", "1").await.unwrap();
        b.put("p/only-b", "1").await.unwrap();
        b.put("q/outside", "1").await.unwrap();
        let report = diff(&a, &b, &KeyPrefix::new("p/").unwrap(), 4)
            .await
            .unwrap();
        let names = |v: &[KeyName]| v.iter().map(|k| k.as_str().to_owned()).collect::<Vec<_>>();
        assert_eq!(names(&report.only_in_a), ["p/only-a"]);
        assert_eq!(names(&report.only_in_b), ["p/only-b"]);
        assert_eq!(names(&report.equal), ["p/same"]);
        assert_eq!(names(&report.different), ["p/changed"]);
        assert!(!report.is_same());
    }

    #[tokio::test]
    async fn a_listed_key_that_reads_as_not_found_is_not_held() {
        let inner = MemoryStore::new();
        inner.put("p/same", "1").await.unwrap();
        let a = crate::held::ListsDeleted::new(inner, &["p/soft-deleted", "p/both-gone"]);
        let b = crate::held::ListsDeleted::new(MemoryStore::new(), &["p/both-gone"]);
        b.inner.put("p/same", "1").await.unwrap();
        let report = diff(&a, &b, &KeyPrefix::new("p/").unwrap(), 4)
            .await
            .unwrap();
        assert!(report.is_same(), "{report:?}");
        assert_eq!(report.equal.len(), 1);
        assert_eq!(report.not_held.len(), 2);
        // Held by B, listed-but-deleted in A: only in B.
        b.inner.put("p/soft-deleted", "x").await.unwrap();
        let report = diff(&a, &b, &KeyPrefix::new("p/").unwrap(), 4)
            .await
            .unwrap();
        assert_eq!(report.only_in_b.len(), 1, "{report:?}");
        assert!(report.only_in_a.is_empty());
    }
}
