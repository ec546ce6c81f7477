//! `[logging]`: the AWS agent's logging table, accepted as it is.
//!
//! `log_level` (`DEBUG`, `INFO`, `WARN`, `ERROR`, `NONE`; default `INFO`) sets the level of
//! the agent's own log lines; `RUST_LOG`, when set, wins. `log_to_file` is accepted and has no
//! effect: kms-agent always logs to standard error (journald, `kubectl logs`).

use serde::Deserialize;

use super::error::{config_error, deserialize};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    log_level: Option<String>,
    log_to_file: Option<bool>,
}

/// The validated `[logging]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggingSettings {
    /// A `tracing` level filter: `debug`, `info`, `warn`, `error` or `off`.
    pub level: &'static str,
}

impl LoggingSettings {
    pub(crate) fn from_value(value: Option<toml::Value>) -> kms::Result<Self> {
        let s: Section = match value {
            Some(v) => deserialize("logging", v)?,
            None => Section::default(),
        };
        let _ = s.log_to_file;
        let level = match s
            .log_level
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("info") => "info",
            Some("debug") => "debug",
            Some("warn") => "warn",
            Some("error") => "error",
            Some("none") => "off",
            Some(other) => {
                return Err(config_error(
                    "logging.log_level",
                    format_args!(
                        "invalid level {other:?}: expected DEBUG, INFO, WARN, ERROR or NONE"
                    ),
                ));
            }
        };
        Ok(Self { level })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> kms::Result<LoggingSettings> {
        LoggingSettings::from_value(Some(toml::from_str(text).unwrap()))
    }

    #[test]
    fn levels_as_the_aws_agent_spells_them() {
        assert_eq!(LoggingSettings::from_value(None).unwrap().level, "info");
        assert_eq!(parse("log_level = \"DEBUG\"").unwrap().level, "debug");
        assert_eq!(
            parse("log_level = \"NONE\"\nlog_to_file = true")
                .unwrap()
                .level,
            "off"
        );
        assert!(parse("log_level = \"loud\"").is_err());
        assert!(parse("level = \"info\"").is_err());
    }
}
