//! `[agent]`: where the agent listens and how it bounds what a client may send.
//!
//! ```toml
//! [agent]
//! metrics_prefix = "kms"          # <prefix>_agent_requests_total, …
//! shutdown_timeout = "10s"        # SIGTERM: in-flight requests get this long to finish
//! readiness_timeout = "2s"        # /readyz: longest a store's health probe may take
//!
//! [agent.tcp]                     # on by default, loopback only
//! address = "127.0.0.1"           # host or host:port; the port defaults to `http_port`
//! allow_non_loopback = false
//!
//! [agent.unix]                    # off by default
//! path = "/run/kms-agent/agent.sock"
//! mode = "0660"
//!
//! [agent.metrics]                 # off by default: /metrics only, no token
//! address = "127.0.0.1:9464"
//!
//! [agent.limits]
//! max_header_bytes = 16384        # request line and headers
//! max_headers = 64
//! max_body_bytes = 0              # requests are GETs: a body is refused
//! header_read_timeout = "10s"     # also closes keep-alive connections idle this long
//! request_timeout = "60s"         # then 504
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::error::{config_error, deserialize};
use kms::duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    metrics_prefix: Option<String>,
    #[serde(default, deserialize_with = "duration::opt")]
    shutdown_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration::opt")]
    readiness_timeout: Option<Duration>,
    tcp: Option<TcpSection>,
    unix: Option<UnixSection>,
    metrics: Option<MetricsSection>,
    limits: Option<LimitsSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TcpSection {
    enabled: Option<bool>,
    address: Option<String>,
    allow_non_loopback: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnixSection {
    path: PathBuf,
    mode: Option<Mode>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Mode {
    Int(u32),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsSection {
    address: String,
    allow_non_loopback: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsSection {
    max_header_bytes: Option<usize>,
    max_headers: Option<usize>,
    max_body_bytes: Option<u64>,
    #[serde(default, deserialize_with = "duration::opt")]
    header_read_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration::opt")]
    request_timeout: Option<Duration>,
}

/// The validated `[agent]` table.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentSettings {
    /// Prefix of the agent's metric families.
    pub metrics_prefix: String,
    /// How long SIGTERM waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// Longest one store's health probe may take in `/readyz`.
    pub readiness_timeout: Duration,
    /// The TCP listener, if on.
    pub tcp: Option<SocketAddr>,
    /// The Unix socket listener, if on.
    pub unix: Option<UnixSettings>,
    /// The metrics-only listener, if on.
    pub metrics: Option<SocketAddr>,
    /// Request limits.
    pub limits: Limits,
}

/// `[agent.unix]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnixSettings {
    /// The socket's path.
    pub path: PathBuf,
    /// Its file mode (default `0o660`).
    pub mode: u32,
}

/// `[agent.limits]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request line plus headers, in bytes (answered 431 beyond).
    pub max_header_bytes: usize,
    /// Most header fields (answered 431 beyond).
    pub max_headers: usize,
    /// Largest declared request body (answered 413 beyond).
    pub max_body_bytes: u64,
    /// Longest a client may take to send a request's headers, and longest a keep-alive
    /// connection may sit idle.
    pub header_read_timeout: Duration,
    /// Longest a request may take (answered 504 beyond).
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_body_bytes: 0,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// Parses a listener address: `host:port`, `[v6]:port`, or a bare host (then `port`);
/// `localhost` is 127.0.0.1. Names are not resolved: a listener address is an IP literal.
fn parse_address(key: &str, text: &str, port: u16) -> kms::Result<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    if text == "localhost" {
        return Ok(SocketAddr::new(localhost, port));
    }
    if let Some(p) = text.strip_prefix("localhost:")
        && let Ok(p) = p.parse::<u16>()
    {
        return Ok(SocketAddr::new(localhost, p));
    }
    Err(config_error(
        key,
        format_args!(
            "invalid address {text:?}: expected an IP address with an optional port \
             (\"127.0.0.1\", \"127.0.0.1:2773\", \"[::1]:2773\")"
        ),
    ))
}

fn check_loopback(key: &str, addr: SocketAddr, allowed: bool, allow_key: &str) -> kms::Result<()> {
    if addr.ip().is_loopback() || allowed {
        return Ok(());
    }
    Err(config_error(
        key,
        format_args!(
            "{addr} is not a loopback address: set `{allow_key} = true` to listen on it \
             (every host that reaches it can then make requests)"
        ),
    ))
}

fn parse_mode(mode: Option<Mode>) -> kms::Result<u32> {
    let key = "agent.unix.mode";
    let mode = match mode {
        None => return Ok(0o660),
        Some(Mode::Int(m)) => m,
        Some(Mode::Text(t)) => {
            u32::from_str_radix(t.trim_start_matches("0o"), 8).map_err(|_| {
                config_error(
                    key,
                    format_args!("invalid mode {t:?}: expected octal digits like \"0660\""),
                )
            })?
        }
    };
    if mode > 0o777 {
        return Err(config_error(
            key,
            format_args!("invalid mode {mode:o}: expected permission bits, at most 0777"),
        ));
    }
    Ok(mode)
}

fn check_prefix(prefix: &str) -> kms::Result<()> {
    let mut chars = prefix.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(config_error(
            "agent.metrics_prefix",
            format_args!("invalid prefix {prefix:?}: expected [a-zA-Z_][a-zA-Z0-9_]*"),
        ))
    }
}

impl AgentSettings {
    /// Validates the table (`None`: absent); `http_port` is the TCP listener's default port.
    pub(crate) fn from_value(value: Option<toml::Value>, http_port: u16) -> kms::Result<Self> {
        let s: Section = match value {
            Some(v) => deserialize("agent", v)?,
            None => Section::default(),
        };
        let metrics_prefix = s.metrics_prefix.unwrap_or_else(|| "kms".to_owned());
        check_prefix(&metrics_prefix)?;
        let tcp_section = s.tcp.unwrap_or_default();
        let tcp = if tcp_section.enabled == Some(false) {
            None
        } else {
            let text = tcp_section.address.as_deref().unwrap_or("127.0.0.1");
            let addr = parse_address("agent.tcp.address", text, http_port)?;
            check_loopback(
                "agent.tcp.address",
                addr,
                tcp_section.allow_non_loopback == Some(true),
                "agent.tcp.allow_non_loopback",
            )?;
            Some(addr)
        };
        let unix = match s.unix {
            Some(u) => {
                if u.path.as_os_str().is_empty() {
                    return Err(config_error("agent.unix.path", "must not be empty"));
                }
                Some(UnixSettings {
                    path: u.path,
                    mode: parse_mode(u.mode)?,
                })
            }
            None => None,
        };
        if tcp.is_none() && unix.is_none() {
            return Err(config_error(
                "agent",
                "no listener: `agent.tcp` is disabled and there is no `agent.unix`",
            ));
        }
        let metrics = match s.metrics {
            Some(m) => {
                let addr = parse_address("agent.metrics.address", &m.address, 9464)?;
                check_loopback(
                    "agent.metrics.address",
                    addr,
                    m.allow_non_loopback == Some(true),
                    "agent.metrics.allow_non_loopback",
                )?;
                Some(addr)
            }
            None => None,
        };
        let mut limits = Limits::default();
        if let Some(l) = s.limits {
            if let Some(v) = l.max_header_bytes {
                if !(1024..=1024 * 1024).contains(&v) {
                    return Err(config_error(
                        "agent.limits.max_header_bytes",
                        format_args!("{v} is out of range: expected 1024 to 1048576"),
                    ));
                }
                limits.max_header_bytes = v;
            }
            if let Some(v) = l.max_headers {
                if !(1..=1000).contains(&v) {
                    return Err(config_error(
                        "agent.limits.max_headers",
                        format_args!("{v} is out of range: expected 1 to 1000"),
                    ));
                }
                limits.max_headers = v;
            }
            if let Some(v) = l.max_body_bytes {
                limits.max_body_bytes = v;
            }
            if let Some(v) = l.header_read_timeout {
                if v.is_zero() {
                    return Err(config_error(
                        "agent.limits.header_read_timeout",
                        "must be above 0s",
                    ));
                }
                limits.header_read_timeout = v;
            }
            if let Some(v) = l.request_timeout {
                if v.is_zero() {
                    return Err(config_error(
                        "agent.limits.request_timeout",
                        "must be above 0s",
                    ));
                }
                limits.request_timeout = v;
            }
        }
        Ok(Self {
            metrics_prefix,
            shutdown_timeout: s.shutdown_timeout.unwrap_or(Duration::from_secs(10)),
            readiness_timeout: s.readiness_timeout.unwrap_or(Duration::from_secs(2)),
            tcp,
            unix,
            metrics,
            limits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> kms::Result<AgentSettings> {
        let v: toml::Value = toml::from_str(text).unwrap();
        AgentSettings::from_value(Some(v), 2773)
    }

    #[test]
    fn defaults_listen_on_loopback_at_the_http_port() {
        let s = AgentSettings::from_value(None, 4000).unwrap();
        assert_eq!(s.tcp, Some("127.0.0.1:4000".parse().unwrap()));
        assert_eq!(s.unix, None);
        assert_eq!(s.metrics, None);
        assert_eq!(s.metrics_prefix, "kms");
        assert_eq!(s.limits, Limits::default());
        assert_eq!(s.shutdown_timeout, Duration::from_secs(10));
    }

    #[test]
    fn addresses() {
        let s = parse("[tcp]\naddress = \"[::1]:9\"").unwrap();
        assert_eq!(s.tcp, Some("[::1]:9".parse().unwrap()));
        let s = parse("[tcp]\naddress = \"localhost\"").unwrap();
        assert_eq!(s.tcp, Some("127.0.0.1:2773".parse().unwrap()));
        let s = parse("[tcp]\naddress = \"localhost:0\"").unwrap();
        assert_eq!(s.tcp, Some("127.0.0.1:0".parse().unwrap()));
        let e = parse("[tcp]\naddress = \"example.com:80\"").unwrap_err();
        assert!(e.message().starts_with("`agent.tcp.address`"), "{e}");
    }

    #[test]
    fn non_loopback_needs_an_explicit_yes() {
        let e = parse("[tcp]\naddress = \"0.0.0.0\"").unwrap_err();
        assert!(e.message().contains("allow_non_loopback"), "{e}");
        let s = parse("[tcp]\naddress = \"0.0.0.0\"\nallow_non_loopback = true").unwrap();
        assert_eq!(s.tcp, Some("0.0.0.0:2773".parse().unwrap()));
        let e = parse("[metrics]\naddress = \"10.0.0.1:9464\"").unwrap_err();
        assert!(
            e.message().contains("agent.metrics.allow_non_loopback"),
            "{e}"
        );
    }

    #[test]
    fn unix_socket_modes() {
        let s = parse("[unix]\npath = \"/tmp/a.sock\"").unwrap();
        assert_eq!(s.unix.unwrap().mode, 0o660);
        let s = parse("[unix]\npath = \"/tmp/a.sock\"\nmode = \"0600\"").unwrap();
        assert_eq!(s.unix.unwrap().mode, 0o600);
        let s = parse("[unix]\npath = \"/tmp/a.sock\"\nmode = 0o640").unwrap();
        assert_eq!(s.unix.unwrap().mode, 0o640);
        assert!(parse("[unix]\npath = \"/tmp/a.sock\"\nmode = \"0999\"").is_err());
        assert!(parse("[unix]\npath = \"/tmp/a.sock\"\nmode = 0o7777").is_err());
    }

    #[test]
    fn at_least_one_listener() {
        let e = parse("[tcp]\nenabled = false").unwrap_err();
        assert!(e.message().contains("no listener"), "{e}");
        let s = parse("[tcp]\nenabled = false\n[unix]\npath = \"/tmp/a.sock\"").unwrap();
        assert_eq!(s.tcp, None);
    }

    #[test]
    fn limits_and_unknown_keys() {
        let s = parse("[limits]\nmax_header_bytes = 8192\nheader_read_timeout = \"2s\"").unwrap();
        assert_eq!(s.limits.max_header_bytes, 8192);
        assert_eq!(s.limits.header_read_timeout, Duration::from_secs(2));
        let e = parse("[limits]\nmax_header_bytes = 10").unwrap_err();
        assert!(
            e.message().starts_with("`agent.limits.max_header_bytes`"),
            "{e}"
        );
        let e = parse("[limits]\nheader_read_timeout = \"10\"").unwrap_err();
        assert!(e.message().contains("invalid duration"), "{e}");
        let e = parse("[limits]\nmax_body = 1").unwrap_err();
        assert!(e.message().contains("unknown field `max_body`"), "{e}");
        let e = parse("metrics_prefix = \"1bad\"").unwrap_err();
        assert!(e.message().starts_with("`agent.metrics_prefix`"), "{e}");
    }
}
