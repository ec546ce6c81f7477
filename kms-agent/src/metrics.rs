//! The agent's own metric families, registered beside the stores' in one
//! [`MetricsRegistry`](kms::MetricsRegistry) (served by the metrics listener).
//!
//! | Family | Labels | What |
//! | --- | --- | --- |
//! | `<p>_agent_requests_total` | `route`, `status` | every answered request |
//! | `<p>_agent_requests_refused_total` | `reason` | every refused request (also in the above) |
//! | `<p>_agent_requests_in_flight` | | requests being answered now |
//! | `<p>_agent_connections` | | open client connections that have sent a request (the API listeners; what `max_conn` counts) |
//! | `<p>_agent_config_reloads_total` | `result` | reloads (`success`, `failure`) |
//! | `<p>_agent_config_last_reload_successful` | | 1 if the last reload was applied, else 0 |
//! | `<p>_agent_prefetch_secrets_total` | `result` | secrets read at start (`success`, `failure`) |
//!
//! Every label value is one of a fixed set: never a secret name, a path or a header.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// More open connections than `max_conn` (429).
    ConnectionLimit,
    /// An `X-Forwarded-For` header (400).
    Forwarded,
    /// None of the token headers present (403).
    MissingToken,
    /// A token header with the wrong token (403).
    BadToken,
    /// A method other than GET (405).
    Method,
    /// A declared body larger than `max_body_bytes` (413).
    BodyTooLarge,
    /// Request line and headers larger than `max_header_bytes`, or too many headers (431;
    /// answered by the HTTP layer, counted when the connection ends).
    HeadersTooLarge,
    /// Headers not received within `header_read_timeout` (the connection is closed).
    HeaderTimeout,
}

impl Refusal {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ConnectionLimit => "connection_limit",
            Self::Forwarded => "forwarded",
            Self::MissingToken => "missing_token",
            Self::BadToken => "bad_token",
            Self::Method => "method",
            Self::BodyTooLarge => "body_too_large",
            Self::HeadersTooLarge => "headers_too_large",
            Self::HeaderTimeout => "header_timeout",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// The agent's metric families. Cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct AgentMetrics {
    requests: Family<RequestLabels, Counter>,
    refused: Family<ReasonLabels, Counter>,
    in_flight: Gauge,
    connections: Gauge,
    reloads: Family<ResultLabels, Counter>,
    last_reload_ok: Gauge,
    prefetched: Family<ResultLabels, Counter>,
}

impl AgentMetrics {
    /// Registers the families under `prefix` in `registry`.
    pub fn register(registry: &kms::MetricsRegistry, prefix: &str) -> Self {
        let m = Self::default();
        m.last_reload_ok.set(1);
        registry.with_registry(|r| {
            let r = r.sub_registry_with_prefix(prefix);
            r.register(
                "agent_requests",
                "Requests answered by the agent, by route and HTTP status",
                m.requests.clone(),
            );
            r.register(
                "agent_requests_refused",
                "Requests the agent refused, by reason",
                m.refused.clone(),
            );
            r.register(
                "agent_requests_in_flight",
                "Requests being answered now",
                m.in_flight.clone(),
            );
            r.register(
                "agent_connections",
                "Open client connections on the API listeners that have sent a request",
                m.connections.clone(),
            );
            r.register(
                "agent_config_reloads",
                "Configuration reloads, by result",
                m.reloads.clone(),
            );
            r.register(
                "agent_config_last_reload_successful",
                "1 if the last configuration reload was applied, 0 if it was refused",
                m.last_reload_ok.clone(),
            );
            r.register(
                "agent_prefetch_secrets",
                "Secrets read into the cache by the prefetch, by result",
                m.prefetched.clone(),
            );
        });
        for reason in [
            Refusal::ConnectionLimit,
            Refusal::Forwarded,
            Refusal::MissingToken,
            Refusal::BadToken,
            Refusal::Method,
            Refusal::BodyTooLarge,
            Refusal::HeadersTooLarge,
            Refusal::HeaderTimeout,
        ] {
            // Present at zero from the start, so a rate() has a baseline.
            let _ = m.refused.get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            });
        }
        m
    }

    /// Counts an answered request.
    pub fn request(&self, route: &'static str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels { route, status })
            .inc();
    }

    /// Counts a refused request.
    pub fn refused(&self, reason: Refusal) {
        self.refused
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// The in-flight gauge.
    pub fn in_flight(&self) -> &Gauge {
        &self.in_flight
    }

    /// The open-connections gauge.
    pub fn connections(&self) -> &Gauge {
        &self.connections
    }

    /// Counts a reload.
    pub fn reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
        self.last_reload_ok.set(i64::from(ok));
    }

    /// Counts a prefetched secret.
    pub fn prefetched(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.prefetched
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// Requests counted for `route` and `status` so far (for tests and the status report).
    pub fn requests_of(&self, route: &'static str, status: u16) -> u64 {
        self.requests
            .get(&RequestLabels { route, status })
            .map_or(0, |c| c.get())
    }

    /// Refusals counted for `reason` so far.
    pub fn refused_of(&self, reason: Refusal) -> u64 {
        self.refused
            .get(&ReasonLabels {
                reason: reason.as_str(),
            })
            .map_or(0, |c| c.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_exposed_under_the_prefix() {
        let registry = kms::MetricsRegistry::new();
        let m = AgentMetrics::register(&registry, "kms");
        m.request("secretsmanager_get", 200);
        m.refused(Refusal::BadToken);
        m.reload(false);
        m.prefetched(true);
        let text = registry.encode();
        assert!(
            text.contains(
                "kms_agent_requests_total{route=\"secretsmanager_get\",status=\"200\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("kms_agent_requests_refused_total{reason=\"bad_token\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("kms_agent_requests_refused_total{reason=\"forwarded\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("kms_agent_config_reloads_total{result=\"failure\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("kms_agent_config_last_reload_successful 0"),
            "{text}"
        );
        assert!(
            text.contains("kms_agent_prefetch_secrets_total{result=\"success\"} 1"),
            "{text}"
        );
        assert_eq!(m.requests_of("secretsmanager_get", 200), 1);
        assert_eq!(m.refused_of(Refusal::BadToken), 1);
    }

    #[test]
    fn another_prefix() {
        let registry = kms::MetricsRegistry::new();
        let m = AgentMetrics::register(&registry, "payments");
        m.request("ping", 200);
        assert!(registry.encode().contains("payments_agent_requests_total"));
    }
}
