//! `[capabilities.secrets_manager]`: the AWS Secrets Manager Agent's own table, accepted as
//! that agent accepts it (same keys, same ranges, same defaults), so its configuration file
//! works here unchanged.
//!
//! | Key | Range | Default | Here |
//! | --- | --- | --- | --- |
//! | `enabled` | bool | `true` | `false` turns the AWS-compatible routes off |
//! | `http_port` | 1024–65535 | 2773 | the TCP listener's port (unless `[agent.tcp] address` names one) |
//! | `region` | text | SDK chain | the region of the implicit store (when there is no `[stores]` table) |
//! | `path_prefix` | starts with `/` | `/v1/` | the path form `GET <prefix><secretId>` |
//! | `max_conn` | 1–1000 | 800 | open connections beyond it are answered 429 |
//! | `max_roles` | 1–20 | 20 | accepted; `roleArn` is not supported |
//! | `ignore_transient_errors` | bool | `true` | accepted; stale-if-error is the store's `cache.stale_if_error` |
//! | `validate_credentials` | bool | `true` | accepted; stores check their credentials when built |
//! | `cache.ttl_seconds` | 0–3600 | 300 | the TTL of stores without their own `cache` table (0: no cache) |
//! | `cache.cache_size` | 1–1000 | 1000 | their `cache.max_entries` |
//! | `security.ssrf_headers` | non-empty | `X-Aws-Parameters-Secrets-Token`, `X-Vault-Token` | headers the token is read from |
//! | `security.ssrf_env_variables` | non-empty | `AWS_TOKEN`, `AWS_SESSION_TOKEN`, `AWS_CONTAINER_AUTHORIZATION_TOKEN` | where the token is found |
//! | `prefetch.secrets` | list of `{ secret_id }` | none | read into the cache at start |
//! | `prefetch.max_jitter_seconds` | 0–10 | 0 | random delay before the prefetch |
//! | `prefetch.cache_buffer_ratio` | 0.1–1.0 | 0.8 | prefetch at most this share of `cache_size` |

use std::path::PathBuf;
use std::time::Duration;

use http::HeaderName;
use serde::Deserialize;

use super::error::{config_error, deserialize};

const AT: &str = "capabilities.secrets_manager";

/// The token headers the AWS agent checks by default.
pub const DEFAULT_SSRF_HEADERS: [&str; 2] = ["X-Aws-Parameters-Secrets-Token", "X-Vault-Token"];
/// The variables the AWS agent reads the token from by default, in this order.
pub const DEFAULT_SSRF_ENV_VARIABLES: [&str; 3] = [
    "AWS_TOKEN",
    "AWS_SESSION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    enabled: Option<bool>,
    http_port: Option<u16>,
    region: Option<String>,
    path_prefix: Option<String>,
    max_conn: Option<usize>,
    max_roles: Option<usize>,
    ignore_transient_errors: Option<bool>,
    validate_credentials: Option<bool>,
    credentials_file_path: Option<PathBuf>,
    cache: Option<CacheSection>,
    security: Option<SecuritySection>,
    prefetch: Option<PrefetchSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheSection {
    ttl_seconds: Option<u16>,
    cache_size: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecuritySection {
    ssrf_headers: Option<Vec<String>>,
    ssrf_env_variables: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrefetchSection {
    cache_buffer_ratio: Option<f32>,
    max_jitter_seconds: Option<u64>,
    #[serde(default)]
    filter_tags: Vec<TagFilter>,
    #[serde(default)]
    secrets: Vec<PrefetchSecret>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // `key` is parsed so the AWS agent's files load; filter_tags is refused
struct TagFilter {
    key: String,
    role_arn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrefetchSecret {
    secret_id: String,
    role_arn: Option<String>,
}

/// The validated `[capabilities.secrets_manager]` table.
#[derive(Clone, Debug, PartialEq)]
pub struct SecretsManagerSettings {
    /// Whether the AWS-compatible routes are served.
    pub enabled: bool,
    /// The TCP listener's port.
    pub http_port: u16,
    /// The implicit store's region.
    pub region: Option<String>,
    /// The path form's prefix.
    pub path_prefix: String,
    /// Open connections beyond which requests are answered 429.
    pub max_conn: usize,
    /// `cache.ttl_seconds`, when given.
    pub cache_ttl_seconds: Option<u16>,
    /// `cache.cache_size`, when given.
    pub cache_size: Option<usize>,
    /// Headers the token is read from, in order.
    pub ssrf_headers: Vec<HeaderName>,
    /// Variables the token is found in, in order.
    pub ssrf_env_variables: Vec<String>,
    /// What to read into the cache at start.
    pub prefetch: PrefetchSettings,
}

/// `[capabilities.secrets_manager.prefetch]`.
#[derive(Clone, Debug, PartialEq)]
pub struct PrefetchSettings {
    /// Secret ids (names or ARNs, as in a request's `secretId`).
    pub secrets: Vec<String>,
    /// The largest random delay before the prefetch starts.
    pub max_jitter: Duration,
    /// The share of `cache_size` a prefetch may fill.
    pub cache_buffer_ratio: f32,
}

impl Default for SecretsManagerSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            http_port: 2773,
            region: None,
            path_prefix: "/v1/".to_owned(),
            max_conn: 800,
            cache_ttl_seconds: None,
            cache_size: None,
            ssrf_headers: DEFAULT_SSRF_HEADERS
                .iter()
                .map(|h| HeaderName::from_bytes(h.as_bytes()).expect("valid header names"))
                .collect(),
            ssrf_env_variables: DEFAULT_SSRF_ENV_VARIABLES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            prefetch: PrefetchSettings::default(),
        }
    }
}

impl Default for PrefetchSettings {
    fn default() -> Self {
        Self {
            secrets: Vec::new(),
            max_jitter: Duration::ZERO,
            cache_buffer_ratio: 0.8,
        }
    }
}

fn range<T: PartialOrd + std::fmt::Display>(key: &str, v: T, lo: T, hi: T) -> kms::Result<T> {
    if v < lo || v > hi {
        return Err(config_error(
            &format!("{AT}.{key}"),
            format_args!("{v} is out of range: expected {lo} to {hi}"),
        ));
    }
    Ok(v)
}

impl SecretsManagerSettings {
    /// The defaults of the AWS agent (what an absent table means).
    pub fn aws_defaults() -> Self {
        Self::default()
    }

    /// The prefetch budget: at most this many secrets (the AWS agent's
    /// `cache_size × cache_buffer_ratio`, at least one).
    pub fn prefetch_limit(&self) -> usize {
        let size = self.cache_size.unwrap_or(1000) as f32;
        ((size * self.prefetch.cache_buffer_ratio) as usize).max(1)
    }

    /// Validates the table (`None`: absent).
    pub(crate) fn from_value(value: Option<toml::Value>) -> kms::Result<Self> {
        let section: Section = match value {
            Some(v) => deserialize(AT, v)?,
            None => Section::default(),
        };
        let mut out = Self::default();
        if let Some(e) = section.enabled {
            out.enabled = e;
        }
        if let Some(p) = section.http_port {
            out.http_port = range("http_port", p, 1024, 65535)?;
        }
        out.region = section.region;
        if let Some(p) = section.path_prefix {
            if !p.starts_with('/') {
                return Err(config_error(
                    &format!("{AT}.path_prefix"),
                    format_args!("{p:?} must begin with /"),
                ));
            }
            out.path_prefix = p;
        }
        if let Some(m) = section.max_conn {
            out.max_conn = range("max_conn", m, 1, 1000)?;
        }
        if let Some(m) = section.max_roles {
            range("max_roles", m, 1, 20)?;
        }
        let _ = (
            section.ignore_transient_errors,
            section.validate_credentials,
        );
        if section.credentials_file_path.is_some() {
            return Err(config_error(
                &format!("{AT}.credentials_file_path"),
                "not supported by kms-agent: give the store's credentials in \
                 `[stores.NAME.aws]` (`profile`, `access_key_id = \"file:…\"`) or use the SDK chain",
            ));
        }
        if let Some(c) = section.cache {
            if let Some(t) = c.ttl_seconds {
                out.cache_ttl_seconds = Some(range("cache.ttl_seconds", t, 0, 3600)?);
            }
            if let Some(s) = c.cache_size {
                out.cache_size = Some(range("cache.cache_size", s, 1, 1000)?);
            }
        }
        if let Some(s) = section.security {
            if let Some(headers) = s.ssrf_headers {
                if headers.is_empty() {
                    return Err(config_error(
                        &format!("{AT}.security.ssrf_headers"),
                        "the list of SSRF headers can't be empty",
                    ));
                }
                out.ssrf_headers = headers
                    .iter()
                    .map(|h| {
                        HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                            config_error(
                                &format!("{AT}.security.ssrf_headers"),
                                format_args!("{h:?} is not a valid header name"),
                            )
                        })
                    })
                    .collect::<kms::Result<_>>()?;
            }
            if let Some(vars) = s.ssrf_env_variables {
                if vars.is_empty() {
                    return Err(config_error(
                        &format!("{AT}.security.ssrf_env_variables"),
                        "the list of SSRF environment variables can't be empty",
                    ));
                }
                out.ssrf_env_variables = vars;
            }
        }
        if let Some(p) = section.prefetch {
            if let Some(r) = p.cache_buffer_ratio {
                out.prefetch.cache_buffer_ratio =
                    range("prefetch.cache_buffer_ratio", r, 0.1, 1.0)?;
            }
            if let Some(j) = p.max_jitter_seconds {
                out.prefetch.max_jitter =
                    Duration::from_secs(range("prefetch.max_jitter_seconds", j, 0, 10)?);
            }
            if !p.filter_tags.is_empty() {
                return Err(config_error(
                    &format!("{AT}.prefetch.filter_tags"),
                    "tag-based discovery is not supported by kms-agent: list the secrets in \
                     `prefetch.secrets`",
                ));
            }
            for (i, s) in p.secrets.into_iter().enumerate() {
                if s.role_arn.is_some() {
                    return Err(config_error(
                        &format!("{AT}.prefetch.secrets[{i}].role_arn"),
                        "role chaining is not supported by kms-agent",
                    ));
                }
                if s.secret_id.is_empty() {
                    return Err(config_error(
                        &format!("{AT}.prefetch.secrets[{i}].secret_id"),
                        "must not be empty",
                    ));
                }
                out.prefetch.secrets.push(s.secret_id);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> kms::Result<SecretsManagerSettings> {
        let v: toml::Value = toml::from_str(text).unwrap();
        SecretsManagerSettings::from_value(Some(v))
    }

    #[test]
    fn defaults_are_the_aws_agents() {
        let s = SecretsManagerSettings::from_value(None).unwrap();
        assert!(s.enabled);
        assert_eq!(s.http_port, 2773);
        assert_eq!(s.path_prefix, "/v1/");
        assert_eq!(s.max_conn, 800);
        assert_eq!(s.cache_ttl_seconds, None);
        let headers: Vec<&str> = s.ssrf_headers.iter().map(HeaderName::as_str).collect();
        assert_eq!(headers, ["x-aws-parameters-secrets-token", "x-vault-token"]);
        assert_eq!(s.ssrf_env_variables, DEFAULT_SSRF_ENV_VARIABLES);
        assert_eq!(s.prefetch_limit(), 800);
    }

    #[test]
    fn accepts_the_aws_agents_documented_table() {
        // The "Secrets Manager configuration" example of the AWS agent's README.
        let s = parse(
            r#"
            enabled = true
            http_port = 2773
            region = "us-east-1"
            path_prefix = "/v1/"
            max_conn = 800
            max_roles = 20

            [cache]
            ttl_seconds = 300
            cache_size = 1000

            [security]
            ssrf_headers = ["X-Aws-Parameters-Secrets-Token", "X-Vault-Token"]
            ssrf_env_variables = ["AWS_TOKEN", "AWS_SESSION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN"]

            [prefetch]
            cache_buffer_ratio = 0.8
            max_jitter_seconds = 5
            secrets = [
              { secret_id = "arn:aws:secretsmanager:us-west-2:123456789012:secret:MySecret-AbCdEf" },
            ]
            "#,
        )
        .unwrap();
        assert_eq!(s.region.as_deref(), Some("us-east-1"));
        assert_eq!(s.cache_ttl_seconds, Some(300));
        assert_eq!(s.cache_size, Some(1000));
        assert_eq!(s.prefetch.max_jitter, Duration::from_secs(5));
        assert_eq!(s.prefetch.secrets.len(), 1);
    }

    #[test]
    fn ranges_are_the_aws_agents() {
        for (text, key) in [
            ("http_port = 80", "http_port"),
            ("max_conn = 0", "max_conn"),
            ("max_conn = 1001", "max_conn"),
            ("max_roles = 21", "max_roles"),
            ("cache = { ttl_seconds = 3601 }", "cache.ttl_seconds"),
            ("cache = { cache_size = 0 }", "cache.cache_size"),
            (
                "prefetch = { max_jitter_seconds = 11 }",
                "prefetch.max_jitter_seconds",
            ),
            (
                "prefetch = { cache_buffer_ratio = 0.05 }",
                "prefetch.cache_buffer_ratio",
            ),
            ("path_prefix = \"v1/\"", "path_prefix"),
            ("security = { ssrf_headers = [] }", "security.ssrf_headers"),
            (
                "security = { ssrf_env_variables = [] }",
                "security.ssrf_env_variables",
            ),
            (
                "security = { ssrf_headers = [\"bad header\"] }",
                "security.ssrf_headers",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(
                e.message().starts_with(&format!("`{AT}.{key}`")),
                "{text}: {e}"
            );
        }
        assert_eq!(
            parse("cache = { ttl_seconds = 0 }")
                .unwrap()
                .cache_ttl_seconds,
            Some(0)
        );
    }

    #[test]
    fn unknown_and_unsupported_keys_are_errors_naming_the_key() {
        let e = parse("htp_port = 2773").unwrap_err();
        assert!(e.message().contains("unknown field `htp_port`"), "{e}");
        let e = parse("credentials_file_path = \"/x\"").unwrap_err();
        assert!(e.message().contains("credentials_file_path"), "{e}");
        let e = parse("prefetch = { filter_tags = [{ key = \"Team\" }] }").unwrap_err();
        assert!(e.message().contains("filter_tags"), "{e}");
        let e = parse(
            "prefetch = { secrets = [{ secret_id = \"a\", role_arn = \"arn:aws:iam::123456789012:role/R\" }] }",
        )
        .unwrap_err();
        assert!(e.message().contains("prefetch.secrets[0].role_arn"), "{e}");
    }
}
