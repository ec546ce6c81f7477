//! URIs: `scheme://authority/path?key=value&…` → the same table a `[stores.NAME]` holds.
//!
//! As OpenDAL's `Operator::from_uri` and Go CDK's URL openers do, the scheme picks the backend,
//! the authority and path carry its main resource (server, mount, namespace, service), and
//! query parameters are options. Here the query keys are exactly the TOML keys: a backend
//! option bare (`kv_version=1`, `auth.token=env:VAULT_TOKEN`), a layer option with its layer
//! (`cache.ttl=5m`, `retry.max_retries=5`). Unknown keys, duplicate keys and fragments are
//! errors; the URI itself never appears in an error (it may hold an inline secret).
//!
//! Every component is decoded as RFC 3986 says, not as an HTML form: `%XX` is the byte `XX`,
//! `+` is a plus (an AppRole id `ab+cd` stays `ab+cd`), and a `%` not followed by two hex
//! digits, or escapes that do not decode to UTF-8, are errors naming the key (never showing
//! the value, which may be a credential).

use kms_core::Result;
use toml::{Table, Value};
use url::Url;

use crate::error::{config_error, config_error_at_top};
use crate::tables::LAYERS;

/// The accepted schemes, for error messages.
pub(crate) const SCHEMES: &str =
    "`memory`, `vault` (https), `vault+https`, `vault+http`, `aws-sm`, `keyring`";

/// Why a URI component does not decode.
#[derive(Debug, PartialEq, Eq)]
enum BadEscape {
    /// A `%` not followed by two hex digits.
    Malformed,
    /// Escapes that decode to bytes that are not UTF-8.
    NotUtf8,
}

impl BadEscape {
    /// What the error message says (never the value).
    fn describe(&self) -> &'static str {
        match self {
            Self::Malformed => {
                "malformed percent-escape (value not shown): every `%` must start `%XX` with two \
                 hex digits; write a literal `%` as `%25`"
            }
            Self::NotUtf8 => "percent-escapes that are not UTF-8 text (value not shown)",
        }
    }
}

/// Percent-decodes one URI component as RFC 3986 defines it: `%XX` is a byte, every other
/// character (`+` included) is itself.
fn decode(s: &str) -> std::result::Result<String, BadEscape> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
            match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                (Some(hi), Some(lo)) => {
                    out.push(u8::try_from(hi * 16 + lo).expect("two hex digits make a byte"));
                    i += 3;
                }
                _ => return Err(BadEscape::Malformed),
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|e| {
        zeroize::Zeroize::zeroize(&mut e.into_bytes());
        BadEscape::NotUtf8
    })
}

/// The query's `key=value` pairs, split on `&` and the first `=`, each side decoded with
/// [`decode`]; empty pieces (`a=1&&b=2`) are skipped, and a key without `=` has the value
/// `""`.
fn query_pairs(query: &str) -> Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for piece in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_key, raw_value) = piece.split_once('=').unwrap_or((piece, ""));
        // A malformed key is not shown: it may be the tail of a secret value holding an
        // unescaped `&`.
        let key = decode(raw_key)
            .map_err(|e| config_error("query", format_args!("a query key: {}", e.describe())))?;
        let value = decode(raw_value).map_err(|e| config_error(&key, e.describe()))?;
        pairs.push((key, value));
    }
    Ok(pairs)
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
        Some(h) => Some(decode(h).map_err(|e| config_error("host", e.describe()))?),
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
            segments.push(decode(p).map_err(|e| config_error("path", e.describe()))?);
        }
    }

    let query = query_pairs(url.query().unwrap_or_default())?;
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
            let kv1 = query.iter().any(|(k, v)| k == "kv_version" && v == "1");
            check_vault_path(&segments, kv1, &scheme, &url)?;
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
    for (k, v) in query {
        if !seen.insert(k.clone()) {
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
        insert(target, &path, Value::String(v), &k)?;
    }
    table.insert(backend.into(), Value::Table(b));
    Ok((table, backend))
}

/// Refuses a Vault URI path copied from Vault's HTTP API (`/v1/secret/…`, or on KV v2
/// `/secret/data/…` and `/secret/metadata/…`): the client adds `/v1/` and the store adds
/// `/data/` or `/metadata/` itself, so the copy would make `v1` the mount or `data` part of the
/// prefix and every read `not found`. The error gives the URI to write (its query elided: it
/// may hold a credential). A KV v2 folder that really is named `data` is reachable with
/// `prefix=data/…`.
fn check_vault_path(segments: &[String], kv1: bool, scheme: &str, url: &Url) -> Result<()> {
    let (corrected, why) = match segments {
        [first, rest @ ..] if first == "v1" => {
            let mut rest = rest.to_vec();
            if !kv1 && rest.len() >= 2 && matches!(rest[1].as_str(), "data" | "metadata") {
                rest.remove(1);
            }
            (
                rest,
                "`/v1/` is the HTTP API's prefix, which the client adds itself",
            )
        }
        [mount, api, rest @ ..] if !kv1 && matches!(api.as_str(), "data" | "metadata") => (
            std::iter::once(mount.clone())
                .chain(rest.iter().cloned())
                .collect(),
            "`/data/` and `/metadata/` are KV v2's HTTP API paths, which the store adds itself \
             (a folder really named `data`: `prefix=data/…`; a KV v1 mount: `kv_version=1`)",
        ),
        _ => return Ok(()),
    };
    let mut shown = format!("{scheme}://{}", url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    for segment in &corrected {
        shown.push('/');
        shown.push_str(segment);
    }
    if url.query().is_some_and(|q| !q.is_empty()) {
        shown.push_str("?…");
    }
    Err(config_error(
        "path",
        format_args!("the path copies Vault's HTTP API: {why}; use `{shown}`"),
    ))
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
