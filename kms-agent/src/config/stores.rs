//! The stores: the `kms` facade's `default` and `[stores.NAME]` tables, plus what the AWS
//! agent's table implies for them, and a fingerprint per store so a reload can tell which
//! stores did not change.
//!
//! - With no `[stores]` table at all, the agent serves one implicit store, `aws`: AWS Secrets
//!   Manager in `capabilities.secrets_manager.region` (or the SDK chain's region), cached for
//!   `cache.ttl_seconds` (default 300; 0: no cache) with at most `cache.cache_size` entries
//!   (default 1000), as the AWS agent would. An AWS agent configuration file therefore works
//!   unchanged.
//! - With `[stores]`, a store without a `cache` table (in its table or its URI) gets one from
//!   `capabilities.secrets_manager.cache` when that table sets `ttl_seconds` or `cache_size`.
//!   A store's own `cache` table always wins.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use zeroize::{Zeroize, Zeroizing};

use super::error::config_error;
use super::secrets_manager::SecretsManagerSettings;

/// The name of the implicit store.
pub const IMPLICIT_STORE: &str = "aws";

/// A TOML table whose strings (inline secrets among them) are zeroed when it is dropped.
struct Wiped(toml::Table);

impl Drop for Wiped {
    fn drop(&mut self) {
        fn wipe(value: &mut toml::Value) {
            match value {
                toml::Value::String(s) => s.zeroize(),
                toml::Value::Array(items) => items.iter_mut().for_each(wipe),
                toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| wipe(v)),
                _ => {}
            }
        }
        self.0.iter_mut().for_each(|(_, v)| wipe(v));
    }
}

/// The stores' configuration and their fingerprints.
#[derive(Debug)]
pub(crate) struct Stores {
    pub config: kms::Config,
    pub fingerprints: BTreeMap<String, u64>,
}

fn to_text(table: &toml::Table) -> kms::Result<Zeroizing<String>> {
    toml::to_string(table).map(Zeroizing::new).map_err(|e| {
        config_error(
            "stores",
            format_args!("cannot be written back as TOML: {e}"),
        )
    })
}

/// The cache table `capabilities.secrets_manager.cache` stands for (`None`: no cache).
fn cache_table(sm: &SecretsManagerSettings) -> Option<toml::Value> {
    let ttl = sm.cache_ttl_seconds.unwrap_or(300);
    if ttl == 0 {
        return None;
    }
    let mut t = toml::Table::new();
    t.insert("ttl".into(), toml::Value::String(format!("{ttl}s")));
    t.insert(
        "max_entries".into(),
        toml::Value::Integer(sm.cache_size.unwrap_or(1000) as i64),
    );
    Some(toml::Value::Table(t))
}

/// The paths of the `file:` references in `value`: string values `file:/path`, and query
/// values `…=file:/path` of a URI.
fn file_references(value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::String(s) => {
            if let Some(path) = s.strip_prefix("file:") {
                out.push(path.to_owned());
            } else if let Some((_, query)) = s.split_once('?') {
                for pair in query.split('&') {
                    if let Some((_, v)) = pair.split_once('=')
                        && let Some(path) = v.strip_prefix("file:")
                    {
                        let decoded =
                            percent_encoding::percent_decode_str(path).decode_utf8_lossy();
                        out.push(decoded.into_owned());
                    }
                }
            }
        }
        toml::Value::Array(items) => items.iter().for_each(|v| file_references(v, out)),
        toml::Value::Table(t) => t.values().for_each(|v| file_references(v, out)),
        _ => {}
    }
}

/// Adds the content of every file the store's options reference (`file:` credentials) to
/// the fingerprint: a rotated credential file makes the store "changed", so a reload
/// rebuilds it and reads the new credential.
fn hash_referenced_files(value: &toml::Value, h: &mut DefaultHasher) {
    let mut paths = Vec::new();
    file_references(value, &mut paths);
    for path in paths {
        path.hash(h);
        match std::fs::read(&path) {
            Ok(bytes) => Zeroizing::new(bytes).hash(h),
            // Unreadable now: building the store will say why.
            Err(e) => e.kind().hash(h),
        }
    }
}

pub(crate) fn build(
    default: Option<toml::Value>,
    stores: Option<toml::Value>,
    sm: &SecretsManagerSettings,
) -> kms::Result<Stores> {
    let mut raw = Wiped(toml::Table::new());
    if let Some(d) = default {
        raw.0.insert("default".into(), d);
    }
    match stores {
        Some(s) => {
            raw.0.insert("stores".into(), s);
            if sm.cache_ttl_seconds.is_some() || sm.cache_size.is_some() {
                let typed = kms::Config::from_toml_str(&to_text(&raw.0)?)?;
                let uncached: Vec<String> = typed
                    .store_names()
                    .filter(|n| typed.store(n).is_some_and(|s| s.cache.is_none()))
                    .map(str::to_owned)
                    .collect();
                if let (Some(cache), Some(toml::Value::Table(stores))) =
                    (cache_table(sm), raw.0.get_mut("stores"))
                {
                    for name in uncached {
                        if let Some(toml::Value::Table(store)) = stores.get_mut(&name) {
                            store.insert("cache".into(), cache.clone());
                        }
                    }
                }
            }
        }
        None => {
            let mut aws = toml::Table::new();
            if let Some(region) = &sm.region {
                aws.insert("region".into(), toml::Value::String(region.clone()));
            }
            let mut store = toml::Table::new();
            store.insert("aws".into(), toml::Value::Table(aws));
            if let Some(cache) = cache_table(sm) {
                store.insert("cache".into(), cache);
            }
            let mut stores = toml::Table::new();
            stores.insert(IMPLICIT_STORE.into(), toml::Value::Table(store));
            raw.0.insert("stores".into(), toml::Value::Table(stores));
        }
    }
    let config = kms::Config::from_toml_str(&to_text(&raw.0)?)?;
    let mut fingerprints = BTreeMap::new();
    if let Some(toml::Value::Table(stores)) = raw.0.get("stores") {
        for (name, table) in stores {
            let text = match table {
                toml::Value::Table(t) => to_text(t)?,
                other => Zeroizing::new(other.to_string()),
            };
            let mut h = DefaultHasher::new();
            text.hash(&mut h);
            hash_referenced_files(table, &mut h);
            fingerprints.insert(name.clone(), h.finish());
        }
    }
    Ok(Stores {
        config,
        fingerprints,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sm(text: &str) -> SecretsManagerSettings {
        SecretsManagerSettings::from_value(Some(toml::from_str(text).unwrap())).unwrap()
    }

    fn value(text: &str) -> toml::Value {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn without_stores_there_is_the_implicit_aws_store() {
        let s = build(None, None, &sm("region = \"eu-west-1\"")).unwrap();
        let names: Vec<&str> = s.config.store_names().collect();
        assert_eq!(names, [IMPLICIT_STORE]);
        let store = s.config.store(IMPLICIT_STORE).unwrap();
        assert_eq!(
            store.aws.as_ref().unwrap().region.as_deref(),
            Some("eu-west-1")
        );
        let cache = store.cache.as_ref().unwrap();
        assert_eq!(cache.ttl, Some(std::time::Duration::from_secs(300)));
        assert_eq!(cache.max_entries, Some(1000));
        assert_eq!(s.config.default_store(), Some(IMPLICIT_STORE));
    }

    #[test]
    fn ttl_zero_means_no_cache() {
        let s = build(None, None, &sm("cache = { ttl_seconds = 0 }")).unwrap();
        assert!(s.config.store(IMPLICIT_STORE).unwrap().cache.is_none());
    }

    #[test]
    fn the_aws_cache_table_fills_in_for_stores_without_their_own() {
        let stores = value(
            r#"
            a = { memory = {} }
            b = { memory = {}, cache = { ttl = "1m" } }
            c = { uri = "memory://?cache.ttl=2m" }
            "#,
        );
        let s = build(
            Some(toml::Value::String("a".into())),
            Some(stores),
            &sm("cache = { ttl_seconds = 30, cache_size = 7 }"),
        )
        .unwrap();
        let a = s.config.store("a").unwrap().cache.clone().unwrap();
        assert_eq!(a.ttl, Some(std::time::Duration::from_secs(30)));
        assert_eq!(a.max_entries, Some(7));
        let b = s.config.store("b").unwrap().cache.clone().unwrap();
        assert_eq!(b.ttl, Some(std::time::Duration::from_secs(60)));
        let c = s.config.store("c").unwrap().cache.clone().unwrap();
        assert_eq!(c.ttl, Some(std::time::Duration::from_secs(120)));
    }

    #[test]
    fn without_the_aws_cache_table_stores_stay_as_written() {
        let s = build(None, Some(value("a = { memory = {} }")), &sm("")).unwrap();
        assert!(s.config.store("a").unwrap().cache.is_none());
    }

    #[test]
    fn fingerprints_change_with_the_store_and_only_with_it() {
        let one = build(
            None,
            Some(value(
                "a = { memory = {} }\nb = { memory = { max_versions = 2 } }",
            )),
            &sm(""),
        )
        .unwrap();
        let two = build(
            None,
            Some(value(
                "a = { memory = {} }\nb = { memory = { max_versions = 3 } }",
            )),
            &sm(""),
        )
        .unwrap();
        assert_eq!(one.fingerprints["a"], two.fingerprints["a"]);
        assert_ne!(one.fingerprints["b"], two.fingerprints["b"]);
        // The AWS cache table is part of what a store is.
        let three = build(
            None,
            Some(value("a = { memory = {} }")),
            &sm("cache = { ttl_seconds = 5 }"),
        )
        .unwrap();
        assert_ne!(one.fingerprints["a"], three.fingerprints["a"]);
    }

    #[test]
    fn a_changed_credential_file_changes_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        let stores = |uri: bool| {
            let path = token.display();
            if uri {
                value(&format!(
                    "v = {{ uri = \"vault+http://127.0.0.1:8200/secret?auth.token=file:{path}\" }}"
                ))
            } else {
                value(&format!(
                    "v = {{ vault = {{ address = \"http://127.0.0.1:8200\", auth = {{ token = \"file:{path}\" }} }} }}"
                ))
            }
        };
        for uri in [false, true] {
            std::fs::write(&token, "one").unwrap();
            let a = build(None, Some(stores(uri)), &sm("")).unwrap();
            let b = build(None, Some(stores(uri)), &sm("")).unwrap();
            assert_eq!(
                a.fingerprints["v"], b.fingerprints["v"],
                "same file, same store"
            );
            std::fs::write(&token, "two").unwrap();
            let c = build(None, Some(stores(uri)), &sm("")).unwrap();
            assert_ne!(
                a.fingerprints["v"], c.fingerprints["v"],
                "rotated file, rebuilt store (uri: {uri})"
            );
        }
    }

    #[test]
    fn store_errors_name_the_key() {
        let e = build(
            None,
            Some(value("a = { memory = {}, cache = { ttll = \"1m\" } }")),
            &sm(""),
        )
        .unwrap_err();
        assert!(e.message().contains("stores.a.cache"), "{e}");
    }
}
