//! What every conformance case shares: the store type, unique names, clean-up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::key_name::KeyName;
use crate::store::KeyStore;

/// A store under test, as the cases take it.
pub type TestStore = Arc<dyn KeyStore>;

/// Turns any store into the [`TestStore`] the cases take.
pub fn test_store(store: impl KeyStore) -> TestStore {
    Arc::new(store)
}

/// A unique namespace for one case run.
pub(super) fn namespace(case: &str) -> String {
    format!("conformance/{}", unique_name(case))
}

/// A name unique to this process and call (`<tag>-<pid>-<nanos>-<n>`), for tests that share a
/// server with other test processes: key names, namespaces, server-side key names.
pub fn unique_name(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}-{}-{nanos}-{n}", std::process::id())
}

pub(super) fn key(ns: &str, rest: &str) -> KeyName {
    KeyName::new(format!("{ns}/{rest}")).expect("conformance key names are valid")
}

pub(super) async fn cleanup(store: &TestStore, keys: &[KeyName]) {
    for k in keys {
        let _ = store.remove(k).await;
    }
}
