//! URIs: `scheme://authority/path?key=value&…` → the same table a `[stores.NAME]` holds.
//!
//! As OpenDAL's `Operator::from_uri` and Go CDK's URL openers do, the scheme picks the backend,
//! the authority and path carry its main resource (server, mount, namespace, service), and
//! query parameters are options. Here the query keys are exactly the TOML keys: a backend
//! option bare (`kv_version=1`, `auth.token=env:VAULT_TOKEN`), a layer option with its layer
//! (`cache.ttl=5m`, `retry.max_retries=5`). Unknown keys, duplicate keys and fragments are
//! errors; the URI itself never appears in an error (it may hold an inline secret).

use kms_core::Result;
use toml::{Table, Value};
use url::Url;

use crate::error::{config_error, config_error_at_top};
use crate::tables::LAYERS;

/// The accepted schemes, for error messages.
pub(crate) const SCHEMES: &str =
    "`memory`, `vault` (https), `vault+https`, `vault+http`, `aws-sm`, `keyring`";

/// Percent-decodes a URI component (host or path segment).
fn decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// Parses `uri` into a store table; returns it with the backend's table name.
pub(crate) fn to_table(uri: &str) -> Result<(Table, &'static str)> {
    // The scheme is checked first and alone, so an error never echoes the rest.
    let scheme = uri
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase())
        .ok_or_else(|| {
            config_error_at_top(format_args!(
                "not a store URI (expected `scheme://…`, schemes {SCHEMES})"
            ))
        })?;
    let backend: &'static str = match scheme.as_str() {
        "memory" => "memory",
        "vault" | "vault+https" | "vault+http" => "vault",
        "aws-sm" => "aws",
        "keyring" => "keyring",
        other => {
            let shown: String = other.chars().take(32).collect();
            return Err(config_error(
                "scheme",
                format_args!("unsupported scheme {shown:?}: expected one of {SCHEMES}"),
            ));
        }
    };
    let url = Url::parse(uri)
        .map_err(|e| config_error_at_top(format_args!("malformed {scheme}:// URI: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(config_error(
            "userinfo",
            "credentials in the URI authority are not accepted (value not shown); \
             use `auth.token=env:NAME` or another reference",
        ));
    }
    if url.fragment().is_some() {
        return Err(config_error("fragment", "a store URI takes no `#fragment`"));
    }
    let host = match url.host_str() {
        None | Some("") => None,
        Some(h) => Some(decode(h).ok_or_else(|| config_error("host", "not valid UTF-8"))?),
    };
    let mut segments = Vec::new();
    if let Some(parts) = url.path_segments() {
        let parts: Vec<&str> = parts.collect();
        let n = parts.len();
        for (i, p) in parts.into_iter().enumerate() {
            if p.is_empty() {
                if i + 1 == n {
                    continue; // a trailing slash
                }
                return Err(config_error("path", "empty path segment (`//`)"));
            }
            segments.push(decode(p).ok_or_else(|| config_error("path", "not valid UTF-8"))?);
        }
    }

    let mut b = Table::new();
    let path_given =
        |what: &str| config_error("path", format_args!("a {scheme}:// URI takes no {what}"));
    match backend {
        "memory" => {
            if host.is_some() {
                return Err(config_error(
                    "host",
                    "a memory:// URI takes no host (`memory://?max_versions=3`)",
                ));
            }
            if !segments.is_empty() {
                return Err(path_given("path"));
            }
        }
        "vault" => {
            let Some(host) = host else {
                return Err(config_error(
                    "host",
                    "missing: the Vault server (`vault+https://vault.example:8200/secret`)",
                ));
            };
            let http = if scheme == "vault+http" {
                "http"
            } else {
                "https"
            };
            let address = match url.port() {
                Some(p) => format!("{http}://{host}:{p}"),
                None => format!("{http}://{host}"),
            };
            b.insert("address".into(), Value::String(address));
            let mut segments = segments.into_iter();
            if let Some(mount) = segments.next() {
                b.insert("mount".into(), Value::String(mount));
            }
            let prefix: Vec<String> = segments.collect();
            if !prefix.is_empty() {
                b.insert("prefix".into(), Value::String(prefix.join("/")));
            }
        }
        "aws" => {
            if url.port().is_some() {
                return Err(config_error(
                    "port",
                    "the authority of aws-sm:// is a region; give an emulator as `endpoint_url=`",
                ));
            }
            if let Some(region) = host {
                b.insert("region".into(), Value::String(region));
            }
            if !segments.is_empty() {
                b.insert("namespace".into(), Value::String(segments.join("/")));
            }
        }
        "keyring" => {
            let Some(service) = host else {
                return Err(config_error(
                    "host",
                    "missing: the keyring service (`keyring://my-service`)",
                ));
            };
            if url.port().is_some() {
                return Err(config_error("port", "a keyring:// URI takes no port"));
            }
            if !segments.is_empty() {
                return Err(path_given("path (the service is the authority)"));
            }
            b.insert("service".into(), Value::String(service));
        }
        _ => unreachable!("matched above"),
    }

    let mut table = Table::new();
    let mut seen = std::collections::HashSet::new();
    for (k, v) in url.query_pairs() {
        if !seen.insert(k.to_string()) {
            return Err(config_error(&k, "given more than once"));
        }
        let path: Vec<&str> = k.split('.').collect();
        if path.iter().any(|s| s.is_empty()) {
            return Err(config_error(&k, "malformed key: empty segment"));
        }
        let target = if LAYERS.contains(&path[0]) {
            &mut table
        } else {
            &mut b
        };
        insert(target, &path, Value::String(v.into_owned()), &k)?;
    }
    table.insert(backend.into(), Value::Table(b));
    Ok((table, backend))
}

/// Sets `path` in `table` to `value`, creating tables; a key already set is an error.
fn insert(table: &mut Table, path: &[&str], value: Value, key: &str) -> Result<()> {
    let (last, parents) = path.split_last().expect("at least one segment");
    let mut t = table;
    for p in parents {
        let entry = t
            .entry((*p).to_owned())
            .or_insert_with(|| Value::Table(Table::new()));
        t = match entry {
            Value::Table(inner) => inner,
            _ => return Err(config_error(key, format_args!("`{p}` is not a table"))),
        };
    }
    if t.contains_key(*last) {
        return Err(config_error(
            key,
            "given twice (in the URI path and as a query key)",
        ));
    }
    t.insert((*last).to_owned(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_uri_maps_authority_path_and_query() {
        let (t, b) = to_table(
            "vault+http://127.0.0.1:8200/kv1/app/x?kv_version=1&auth.token=env:T&cache.ttl=5m",
        )
        .unwrap();
        assert_eq!(b, "vault");
        let v = t["vault"].as_table().unwrap();
        assert_eq!(v["address"].as_str(), Some("http://127.0.0.1:8200"));
        assert_eq!(v["mount"].as_str(), Some("kv1"));
        assert_eq!(v["prefix"].as_str(), Some("app/x"));
        assert_eq!(v["kv_version"].as_str(), Some("1"));
        assert_eq!(v["auth"]["token"].as_str(), Some("env:T"));
        assert_eq!(t["cache"]["ttl"].as_str(), Some("5m"));
    }

    #[test]
    fn other_schemes() {
        let (t, _) = to_table("aws-sm://us-east-1/team/app?endpoint_url=http://x:5000").unwrap();
        assert_eq!(t["aws"]["region"].as_str(), Some("us-east-1"));
        assert_eq!(t["aws"]["namespace"].as_str(), Some("team/app"));
        assert_eq!(t["aws"]["endpoint_url"].as_str(), Some("http://x:5000"));
        let (t, _) = to_table("keyring://my%20app?platform_store=keyutils").unwrap();
        assert_eq!(t["keyring"]["service"].as_str(), Some("my app"));
        let (t, _) = to_table("memory://").unwrap();
        assert!(t["memory"].as_table().unwrap().is_empty());
        let (t, _) = to_table("vault://vault.example/secret").unwrap();
        assert_eq!(
            t["vault"]["address"].as_str(),
            Some("https://vault.example")
        );
    }
}
