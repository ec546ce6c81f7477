//! Environment overrides: `KMS_STORES__<NAME>__<KEY>__<KEY>=value` and `KMS_DEFAULT=name`.
//!
//! `__` separates path segments (a single `_` belongs to a key, as in `kv_version`); segments
//! are lower-cased: `KMS_STORES__PAYMENTS__CACHE__TTL=10m` sets `stores.payments.cache.ttl`.
//! Values are text, read as any URI query value is.
//!
//! A `KMS_` variable is never ignored in silence. One that is neither an override, nor one of
//! the [`OTHERS`] this workspace reads, nor named by an `env:` reference, is an error naming
//! it when it looks like configuration ([`looks_like_configuration`]: `KMS_CACHE_TTL`,
//! `KMS_CACHE__TTL`, `KMS_=x`, a mis-cased `kms_stores__…`), since it would change nothing;
//! any other is a warning naming it (on target `kms::config`).

use kms_core::Result;
use toml::{Table, Value};

use crate::error::config_error;

/// The prefix of store overrides.
pub(crate) const STORES_PREFIX: &str = "KMS_STORES__";

/// `KMS_` variables read elsewhere, so not overrides and not mistakes: the configuration file
/// (read by `Config::from_env`), the `kms` CLI's store URI and passphrase, and this
/// workspace's scripts (the test tools' directory, lint skipping, the keyring session, the
/// CLI's benchmark size).
pub(crate) const OTHERS: [&str; 7] = [
    "KMS_CONFIG",
    "KMS_STORE",
    "KMS_PASSPHRASE",
    "KMS_TOOLS",
    "KMS_SKIP_LINT",
    "KMS_KEYRING_NO_LOGIN_COLLECTION",
    "KMS_BENCH_KEYS",
];

/// The prefix of the variables this workspace's test suite reads (its peers' addresses).
pub(crate) const TEST_PREFIX: &str = "KMS_TEST_";

/// The words after `KMS_` that make a variable look like configuration: the top-level keys,
/// a store, the backends and the layers (`KMS_CACHE_TTL`, `KMS_VAULT_ADDR`, `KMS_DEFAULTS`).
const CONFIGURATION_WORDS: [&str; 16] = [
    "STORE", "DEFAULT", "CONFIG", "URI", "MEMORY", "VAULT", "AWS", "KEYRING", "VALIDATE", "CACHE",
    "ENVELOPE", "BREAKER", "RETRY", "TIMEOUT", "METRICS", "OPTION",
];

/// Whether an unexplained `KMS_`-like variable looks like an attempt at configuration: not
/// upper-case `KMS_`, nothing after `KMS_`, a `__` (only overrides use it), or a first word
/// from [`CONFIGURATION_WORDS`].
pub(crate) fn looks_like_configuration(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("KMS_") else {
        return true;
    };
    rest.is_empty()
        || rest.contains("__")
        || CONFIGURATION_WORDS.iter().any(|w| rest.starts_with(w))
}

/// What the overrides among a set of variables left unexplained.
#[derive(Default)]
pub(crate) struct Leftovers {
    /// `KMS_`-looking variables that are not overrides nor [`OTHERS`]: allowed only when an
    /// `env:` reference names them.
    unknown: Vec<String>,
    /// Names `env:` references in the values of `KMS_` variables point at (`KMS_STORE`'s URI
    /// may name `env:KMS_VAULT_TOKEN`).
    referenced: Vec<String>,
}

impl Leftovers {
    /// Fails on the first unexplained variable, given every string of the configuration
    /// (where `env:` references are looked for).
    pub(crate) fn check(self, raw: &Table) -> Result<()> {
        let mut referenced = self.referenced;
        collect_references_in_table(raw, &mut referenced);
        for name in self.unknown {
            if referenced.contains(&name) {
                continue;
            }
            if !looks_like_configuration(&name) {
                tracing::warn!(
                    target: "kms::config",
                    variable = name.as_str(),
                    "a KMS_ variable that sets no option and no `env:` reference names: ignored"
                );
                continue;
            }
            let what = if !name.starts_with("KMS_") {
                "variable names are upper-case: this one is not read".to_owned()
            } else if name.starts_with("KMS_STORES_") || name.starts_with("KMS_STORE_") {
                format!(
                    "sets no option: overrides are `{STORES_PREFIX}<NAME>__<KEY>[__<KEY>…]`, with `__` between segments"
                )
            } else {
                format!(
                    "sets no option: overrides are `{STORES_PREFIX}<NAME>__<KEY>[__<KEY>…]` \
                     (`KMS_STORES__<NAME>__CACHE__TTL=5m`) and `KMS_DEFAULT`; the other KMS_ \
                     variables read are {}, `{TEST_PREFIX}…`, and any named by an `env:` reference",
                    OTHERS.map(|o| format!("`{o}`")).join(", ")
                )
            };
            return Err(config_error(&name, what));
        }
        Ok(())
    }
}

/// Applies the overrides among `vars` to `raw`; returns the `KMS_` variables it could not
/// place, for [`Leftovers::check`] once the configuration is known.
pub(crate) fn apply<K: AsRef<str>, V: Into<String>>(
    raw: &mut Table,
    vars: impl IntoIterator<Item = (K, V)>,
) -> Result<Leftovers> {
    let mut leftovers = Leftovers::default();
    let mut overrides = Vec::new();
    for (k, v) in vars {
        let name = k.as_ref();
        if !name
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("KMS_"))
        {
            continue;
        }
        let value: String = v.into();
        if name.starts_with(STORES_PREFIX) || name == "KMS_DEFAULT" {
            overrides.push((name.to_owned(), value));
            continue;
        }
        collect_references(&value, &mut leftovers.referenced);
        if !(OTHERS.contains(&name) || name.starts_with(TEST_PREFIX)) {
            leftovers.unknown.push(name.to_owned());
        }
    }
    // Deterministic: shorter paths first, so `…__URI` can be refined by longer keys.
    overrides.sort();
    for (name, value) in overrides {
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
    leftovers.unknown.sort();
    Ok(leftovers)
}

/// Every variable name an `env:NAME` in `text` points at (a whole value, or inside a URI).
fn collect_references(text: &str, out: &mut Vec<String>) {
    for (i, _) in text.match_indices("env:") {
        let name: String = text[i + 4..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
    }
}

fn collect_references_in_table(table: &Table, out: &mut Vec<String>) {
    for value in table.values() {
        collect_references_in_value(value, out);
    }
}

fn collect_references_in_value(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => collect_references(s, out),
        Value::Array(items) => items
            .iter()
            .for_each(|v| collect_references_in_value(v, out)),
        Value::Table(t) => collect_references_in_table(t, out),
        _ => {}
    }
}
