//! `/metrics` content negotiation: OpenMetrics 1.0 text (what `prometheus-client` encodes) or
//! the Prometheus text format 0.0.4, chosen from the scraper's `Accept` header.
//!
//! Prometheus itself asks for OpenMetrics first; older scrapers, `curl` and some agents only
//! read 0.0.4. The two differ, for what this crate exports, in three places: 0.0.4 has no
//! `# EOF` and no `# UNIT`, and a counter's `# HELP`/`# TYPE` lines name the sample
//! (`kms_key_operations_total`), where OpenMetrics names the family (`kms_key_operations`).
//! Samples, labels, escaping and histograms are written the same way.

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

/// The content type of OpenMetrics 1.0 text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of the Prometheus text format 0.0.4.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// An exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text.
    OpenMetrics,
    /// Prometheus text format 0.0.4.
    Text,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when it accepts
    /// `application/openmetrics-text` with a higher (or equal) quality than `text/plain`,
    /// else 0.0.4 text (also with no header, as the Prometheus exposition guide says).
    pub fn from_accept(accept: Option<&str>) -> Self {
        let Some(accept) = accept else {
            return Self::Text;
        };
        let mut open = None::<f32>;
        let mut text = None::<f32>;
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let slot = match media.as_str() {
                "application/openmetrics-text" => &mut open,
                "text/plain" | "text/*" | "*/*" => &mut text,
                _ => continue,
            };
            *slot = Some(slot.map_or(q, |old: f32| old.max(q)));
        }
        match (open, text) {
            (Some(o), t) if o > 0.0 && o >= t.unwrap_or(0.0) => Self::OpenMetrics,
            _ => Self::Text,
        }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
            Self::Text => TEXT_CONTENT_TYPE,
        }
    }
}

/// Encodes `registry` in the format `accept` asks for; returns the format chosen (for the
/// `Content-Type`) and the body.
///
/// # Errors
///
/// When a metric fails to encode (`std::fmt::Error`, as `prometheus_client`'s `encode`).
pub fn encode_for(
    registry: &Registry,
    accept: Option<&str>,
) -> Result<(Format, String), std::fmt::Error> {
    let mut open = String::new();
    encode(&mut open, registry)?;
    let format = Format::from_accept(accept);
    Ok(match format {
        Format::OpenMetrics => (format, open),
        Format::Text => (format, to_text_004(&open)),
    })
}

/// Rewrites OpenMetrics text (as `prometheus-client` writes it) as text format 0.0.4.
pub fn to_text_004(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(line) => out.push_str(&line),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_asks_for_openmetrics_curl_gets_text() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::from_accept(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::from_accept(Some("*/*")), Format::Text);
        assert_eq!(Format::from_accept(None), Format::Text);
        assert_eq!(
            Format::from_accept(Some("text/plain;version=0.0.4")),
            Format::Text
        );
        assert_eq!(
            Format::from_accept(Some("text/plain;q=1.0, application/openmetrics-text;q=0.5")),
            Format::Text
        );
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;q=0")),
            Format::Text
        );
    }

    #[test]
    fn counters_are_named_by_their_sample_and_eof_goes() {
        let open = "# HELP kms_key_operations Ops.\n# TYPE kms_key_operations counter\nkms_key_operations_total{operation=\"get\"} 1\n# HELP kms_key_backend_up Up.\n# TYPE kms_key_backend_up gauge\nkms_key_backend_up 1\n# EOF\n";
        assert_eq!(
            to_text_004(open),
            "# HELP kms_key_operations_total Ops.\n# TYPE kms_key_operations_total counter\nkms_key_operations_total{operation=\"get\"} 1\n# HELP kms_key_backend_up Up.\n# TYPE kms_key_backend_up gauge\nkms_key_backend_up 1\n"
        );
    }
}
