//! The agent's configuration file: the `kms` facade's stores (`default`, `[stores.NAME]`),
//! the `[agent]` table (listeners, limits), the AWS agent's `[capabilities.secrets_manager]`
//! and `[logging]` tables. Unknown keys are errors naming the key.
//!
//! `KMS_STORES__…` environment overrides are not applied: the file is the whole
//! configuration, so a reload (SIGHUP) sees everything that changed.

pub mod agent;
mod error;
pub mod logging;
pub mod secrets_manager;
mod stores;

use std::collections::BTreeMap;
use std::path::Path;

use kms::{Error, ErrorKind};

pub use agent::{AgentSettings, Limits, UnixSettings};
pub use logging::LoggingSettings;
pub use secrets_manager::{PrefetchSettings, SecretsManagerSettings};
pub use stores::IMPLICIT_STORE;

use error::config_error;

/// A whole configuration file, validated.
///
/// `Debug` shows the typed options (the stores' secrets redacted by the facade), never the
/// file's text.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    stores: kms::Config,
    fingerprints: BTreeMap<String, u64>,
    agent: AgentSettings,
    secrets_manager: SecretsManagerSettings,
    logging: LoggingSettings,
}

const TOP_LEVEL: &str = "`default`, `stores`, `agent`, `capabilities` or `logging`";

impl AgentConfig {
    /// Reads and validates a file.
    ///
    /// # Errors
    ///
    /// [`Configuration`](ErrorKind::Configuration) naming the file and the offending key.
    pub fn from_file(path: impl AsRef<Path>) -> kms::Result<Self> {
        let path = path.as_ref();
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::Configuration,
                format!("cannot read {}: {}", path.display(), e.kind()),
            )
        })?);
        Self::from_toml_str(&text)
            .map_err(|e| Error::new(e.kind(), format!("{} (in {})", e.message(), path.display())))
    }

    /// Validates TOML text.
    ///
    /// # Errors
    ///
    /// [`Configuration`](ErrorKind::Configuration) for TOML syntax (with the line) and for
    /// every invalid or unknown key, naming it.
    pub fn from_toml_str(text: &str) -> kms::Result<Self> {
        let mut raw: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            // The parser's message quotes no value: a secret on a bad line stays unshown.
            Error::new(
                ErrorKind::Configuration,
                format!("invalid TOML{at}: {}", e.message().trim()),
            )
        })?;
        if let Some(key) = raw.keys().find(|k| {
            !matches!(
                k.as_str(),
                "default" | "stores" | "agent" | "capabilities" | "logging"
            )
        }) {
            return Err(config_error(
                key,
                format_args!("unknown key: expected {TOP_LEVEL} at the top level"),
            ));
        }
        let mut capabilities = match raw.remove("capabilities") {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t,
            Some(other) => {
                return Err(config_error(
                    "capabilities",
                    format_args!("invalid type {}: expected a table", other.type_str()),
                ));
            }
        };
        if capabilities.remove("acm").is_some() {
            return Err(config_error(
                "capabilities.acm",
                "certificate export is not supported by kms-agent",
            ));
        }
        let sm_value = capabilities.remove("secrets_manager");
        if let Some(key) = capabilities.keys().next() {
            return Err(config_error(
                &format!("capabilities.{key}"),
                "unknown capability: expected `secrets_manager`",
            ));
        }
        let secrets_manager = SecretsManagerSettings::from_value(sm_value)?;
        let agent = AgentSettings::from_value(raw.remove("agent"), secrets_manager.http_port)?;
        let logging = LoggingSettings::from_value(raw.remove("logging"))?;
        let stores::Stores {
            config: stores,
            fingerprints,
        } = stores::build(
            raw.remove("default"),
            raw.remove("stores"),
            &secrets_manager,
        )?;
        Ok(Self {
            stores,
            fingerprints,
            agent,
            secrets_manager,
            logging,
        })
    }

    /// The stores, as the `kms` facade reads them.
    pub fn stores(&self) -> &kms::Config {
        &self.stores
    }

    /// A fingerprint of store `name`'s configuration: equal fingerprints, same store.
    pub fn fingerprint(&self, name: &str) -> Option<u64> {
        self.fingerprints.get(name).copied()
    }

    /// `[agent]`.
    pub fn agent(&self) -> &AgentSettings {
        &self.agent
    }

    /// `[capabilities.secrets_manager]`.
    pub fn secrets_manager(&self) -> &SecretsManagerSettings {
        &self.secrets_manager
    }

    /// `[logging]`.
    pub fn logging(&self) -> &LoggingSettings {
        &self.logging
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aws_agent_file_loads_unchanged() {
        // The "Full configuration with pre-fetching" example of the AWS agent's README, less
        // what kms-agent refuses (role chaining, tag discovery).
        let c = AgentConfig::from_toml_str(
            r#"
            [logging]
            log_level = "info"

            [capabilities.secrets_manager]
            http_port = 2773
            region = "us-east-1"
            max_roles = 5

            [capabilities.secrets_manager.cache]
            ttl_seconds = 300

            [capabilities.secrets_manager.prefetch]
            cache_buffer_ratio = 0.6
            max_jitter_seconds = 5

            [[capabilities.secrets_manager.prefetch.secrets]]
            secret_id = "arn:aws:secretsmanager:us-west-2:123456789012:secret:MySecret-AbCdEf"
            "#,
        )
        .unwrap();
        assert_eq!(c.stores().default_store(), Some(IMPLICIT_STORE));
        assert_eq!(c.agent().tcp, Some("127.0.0.1:2773".parse().unwrap()));
        assert_eq!(c.secrets_manager().prefetch.secrets.len(), 1);
        assert!(c.fingerprint(IMPLICIT_STORE).is_some());
    }

    #[test]
    fn the_three_parts_together() {
        let c = AgentConfig::from_toml_str(
            r#"
            default = "mem"
            [stores.mem.memory]
            [agent.tcp]
            address = "127.0.0.1:0"
            [capabilities.secrets_manager]
            path_prefix = "/secrets/"
            "#,
        )
        .unwrap();
        assert_eq!(c.stores().default_store(), Some("mem"));
        assert_eq!(c.secrets_manager().path_prefix, "/secrets/");
        assert_eq!(c.agent().tcp, Some("127.0.0.1:0".parse().unwrap()));
    }

    #[test]
    fn unknown_keys_are_named() {
        for (text, key) in [
            ("http_port = 2773", "`http_port`"),
            ("[capabilities.other]\nx = 1", "`capabilities.other`"),
            ("[capabilities.acm]\nenabled = true", "`capabilities.acm`"),
            ("[agent]\nlisten = 1", "unknown field `listen`"),
            ("[stores.a.memory]\nmax_versionz = 1", "max_versionz"),
        ] {
            let e = AgentConfig::from_toml_str(text).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Configuration);
            assert!(e.message().contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn syntax_errors_name_the_line_not_the_value() {
        let e = AgentConfig::from_toml_str("[stores.a.vault]\naddress = \"x\"\ntoken = hunter2")
            .unwrap_err();
        assert!(e.message().contains("line 3"), "{e}");
        assert!(!e.message().contains("hunter2"), "{e}");
    }

    #[test]
    fn debug_never_shows_inline_secrets() {
        let c = AgentConfig::from_toml_str(
            r#"
            [stores.v.vault]
            address = "http://127.0.0.1:8200"
            auth = { token = "s.inline-secret-token" }
            "#,
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("inline-secret-token"), "{shown}");
    }

    #[test]
    fn files_name_themselves_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, "[agent]\nbogus = 1\n").unwrap();
        let e = AgentConfig::from_file(&path).unwrap_err();
        assert!(e.message().contains("agent.toml"), "{e}");
        let e = AgentConfig::from_file(dir.path().join("missing.toml")).unwrap_err();
        assert!(e.message().contains("cannot read"), "{e}");
    }
}
