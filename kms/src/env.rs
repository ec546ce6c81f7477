//! Environment overrides: `KMS_STORES__<NAME>__<KEY>__<KEY>=value` and `KMS_DEFAULT=name`.
//!
//! `__` separates path segments (a single `_` belongs to a key, as in `kv_version`); segments
//! are lower-cased: `KMS_STORES__PAYMENTS__CACHE__TTL=10m` sets `stores.payments.cache.ttl`.
//! Values are text, read as any URI query value is. Other variables are ignored.

use kms_core::Result;
use toml::{Table, Value};

use crate::error::config_error;

/// The prefix of store overrides.
pub(crate) const STORES_PREFIX: &str = "KMS_STORES__";

/// Applies the overrides among `vars` to `raw`.
pub(crate) fn apply<K: AsRef<str>, V: Into<String>>(
    raw: &mut Table,
    vars: impl IntoIterator<Item = (K, V)>,
) -> Result<()> {
    let mut vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k.as_ref().starts_with(STORES_PREFIX) || k.as_ref() == "KMS_DEFAULT")
        .map(|(k, v)| (k.as_ref().to_owned(), v.into()))
        .collect();
    // Deterministic: shorter paths first, so `…__URI` can be refined by longer keys.
    vars.sort();
    for (name, value) in vars {
        if name == "KMS_DEFAULT" {
            raw.insert("default".into(), Value::String(value));
            continue;
        }
        let rest = &name[STORES_PREFIX.len()..];
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if path.len() < 2 || path.iter().any(String::is_empty) {
            return Err(config_error(
                &name,
                "malformed variable name: expected KMS_STORES__<NAME>__<KEY>[__<KEY>…]",
            ));
        }
        let mut t = &mut *raw;
        let mut walked = String::new();
        for seg in
            std::iter::once("stores").chain(path[..path.len() - 1].iter().map(String::as_str))
        {
            if !walked.is_empty() {
                walked.push('.');
            }
            walked.push_str(seg);
            let entry = t
                .entry(seg.to_owned())
                .or_insert_with(|| Value::Table(Table::new()));
            t = match entry {
                Value::Table(inner) => inner,
                _ => {
                    return Err(config_error(
                        &walked,
                        format_args!("is not a table, so {name} cannot set a key inside it"),
                    ));
                }
            };
        }
        t.insert(path[path.len() - 1].clone(), Value::String(value));
    }
    Ok(())
}
