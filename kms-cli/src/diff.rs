//! `diff`: which keys two stores share, and whether their values agree.

use futures::StreamExt;
use kms_core::{Error, KeyName, KeyPrefix, KeyStore};
use std::collections::BTreeSet;

use crate::compare::values_equal;

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
    /// Names in both whose values could not be read, with the error.
    pub failed: Vec<(KeyName, Error)>,
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

/// Compares the keys under `prefix` in `a` and `b`, `concurrency` keys at a time; values are
/// compared in constant time (see [`values_equal`]).
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
    let names_a: BTreeSet<KeyName> = a.list(prefix).await?.into_iter().collect();
    let names_b: BTreeSet<KeyName> = b.list(prefix).await?.into_iter().collect();
    let mut report = DiffReport {
        only_in_a: names_a.difference(&names_b).cloned().collect(),
        only_in_b: names_b.difference(&names_a).cloned().collect(),
        ..DiffReport::default()
    };
    let both: Vec<KeyName> = names_a.intersection(&names_b).cloned().collect();
    let mut compared: Vec<(KeyName, Result<bool, Error>)> = futures::stream::iter(both)
        .map(|key| async move {
            let result = match futures::try_join!(a.get(&key), b.get(&key)) {
                Ok((x, y)) => Ok(values_equal(&x.value, &y.value)),
                Err(e) => Err(e),
            };
            (key, result)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    compared.sort_by(|x, y| x.0.cmp(&y.0));
    for (key, result) in compared {
        match result {
            Ok(true) => report.equal.push(key),
            Ok(false) => report.different.push(key),
            Err(e) => report.failed.push((key, e)),
        }
    }
    Ok(report)
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
}
