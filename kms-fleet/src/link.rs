//! [`FleetLink`]: the connection to NATS every publisher, subscriber and watcher of a process
//! shares, and the stream of each store.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use kms_core::{Error, ErrorKind, Result, SecretValue};

use crate::metrics::FleetMetrics;
use crate::subject::{DEFAULT_PREFIX, check_prefix, store_subjects, stream_name};

/// How the link authenticates to NATS. Secrets are [`SecretValue`]s: zeroed on drop, never
/// printed by `Debug`.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum NatsAuth {
    /// No authentication.
    #[default]
    None,
    /// A token (`authorization { token: … }`).
    Token(SecretValue),
    /// A user name and password.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: SecretValue,
    },
    /// The contents of a `.creds` file (a JWT and an NKey seed), as `nsc` writes it.
    Credentials(SecretValue),
    /// An NKey seed.
    NKey(SecretValue),
}

impl fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::Token(_) => "Token([REDACTED])",
            Self::UserPassword { .. } => "UserPassword([REDACTED])",
            Self::Credentials(_) => "Credentials([REDACTED])",
            Self::NKey(_) => "NKey([REDACTED])",
        })
    }
}

/// TLS to NATS: a CA to trust, a client certificate, or just "require TLS".
#[derive(Clone, Debug, Default)]
pub struct NatsTls {
    /// PEM file of the CA certificates to trust (else the system roots).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key files, for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Refuse a connection that is not TLS.
    pub required: bool,
}

/// How each store's stream is made when a link first needs it (an existing stream is used as
/// it is).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamSettings {
    /// Copies kept by a JetStream cluster (1 on a single server; 3 in a three-node cluster).
    pub replicas: usize,
    /// How long a change is kept for subscribers to replay after a disconnection. A
    /// subscriber away longer finds a gap and revalidates every cached key.
    pub max_age: Duration,
    /// How long the stream remembers message ids to drop a repeated publish of one change.
    pub duplicate_window: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            replicas: 1,
            max_age: Duration::from_secs(3600),
            duplicate_window: Duration::from_secs(120),
        }
    }
}

/// Settings of a [`FleetLink`]; see [`FleetLink::builder`].
#[derive(Clone)]
pub struct FleetLinkBuilder {
    url: String,
    auth: NatsAuth,
    tls: NatsTls,
    prefix: String,
    origin: String,
    stream: StreamSettings,
    request_timeout: Duration,
    metrics: FleetMetrics,
}

impl fmt::Debug for FleetLinkBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetLinkBuilder")
            .field("url", &redact_url(&self.url))
            .field("auth", &self.auth)
            .field("tls", &self.tls)
            .field("prefix", &self.prefix)
            .field("origin", &self.origin)
            .field("stream", &self.stream)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

/// `url` with any `user:password@` replaced, for `Debug` and errors.
fn redact_url(url: &str) -> String {
    url.split(',')
        .map(
            |server| match (server.split_once("://"), server.rsplit_once('@')) {
                (Some((scheme, _)), Some((_, host))) => format!("{scheme}://[REDACTED]@{host}"),
                (None, Some((_, host))) => format!("[REDACTED]@{host}"),
                _ => server.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join(",")
}

/// The process's connection to NATS (cheap to clone).
#[derive(Clone)]
pub struct FleetLink {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    js: jetstream::Context,
    prefix: String,
    origin: String,
    stream: StreamSettings,
    metrics: FleetMetrics,
}

impl fmt::Debug for FleetLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetLink")
            .field("prefix", &self.inner.prefix)
            .field("origin", &self.inner.origin)
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

/// Maps a NATS client error to an [`ErrorKind::Unavailable`] error (the bus could not be
/// reached or did not answer): what the link's callers may retry.
pub(crate) fn unavailable(what: &str, err: impl fmt::Display) -> Error {
    Error::new(ErrorKind::Unavailable, format!("NATS {what}: {err}"))
}

impl FleetLink {
    /// Settings for a link to `url` (`nats://host:4222`, `tls://…`, or several
    /// comma-separated servers of one cluster).
    pub fn builder(url: impl Into<String>) -> FleetLinkBuilder {
        FleetLinkBuilder {
            url: url.into(),
            auth: NatsAuth::None,
            tls: NatsTls::default(),
            prefix: DEFAULT_PREFIX.to_owned(),
            origin: default_origin(),
            stream: StreamSettings::default(),
            request_timeout: Duration::from_secs(2),
            metrics: FleetMetrics::new(),
        }
    }

    /// The JetStream context.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.inner.js
    }

    /// The NATS client.
    pub fn client(&self) -> &async_nats::Client {
        &self.inner.client
    }

    /// The subject prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// This process's name in the messages it publishes.
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// The metric families.
    pub fn metrics(&self) -> &FleetMetrics {
        &self.inner.metrics
    }

    /// The settings streams are made with.
    pub fn stream_settings(&self) -> StreamSettings {
        self.inner.stream
    }

    /// Whether the connection is up now (the health of the fleet link).
    pub fn is_up(&self) -> bool {
        self.inner.client.connection_state() == async_nats::connection::State::Connected
    }

    /// The stream of `store`, made if it does not exist.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`] when NATS does not answer or refuses.
    pub async fn stream(&self, store: &str) -> Result<jetstream::stream::Stream> {
        let settings = self.inner.stream;
        let config = jetstream::stream::Config {
            name: stream_name(store),
            subjects: vec![store_subjects(&self.inner.prefix, store)],
            max_age: settings.max_age,
            duplicate_window: settings.duplicate_window,
            num_replicas: settings.replicas,
            storage: jetstream::stream::StorageType::File,
            discard: jetstream::stream::DiscardPolicy::Old,
            ..Default::default()
        };
        self.inner
            .js
            .get_or_create_stream(config)
            .await
            .map_err(|e| unavailable("stream", e))
    }
}

fn default_origin() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".to_owned());
    let mut origin = format!("{host}-{}", std::process::id());
    origin.truncate(crate::message::MAX_ORIGIN_LEN);
    origin
}

impl FleetLinkBuilder {
    /// Authentication (default none).
    #[must_use]
    pub fn auth(mut self, auth: NatsAuth) -> Self {
        self.auth = auth;
        self
    }

    /// TLS settings (default: TLS only if the URL or server asks for it).
    #[must_use]
    pub fn tls(mut self, tls: NatsTls) -> Self {
        self.tls = tls;
        self
    }

    /// The subject prefix (default [`DEFAULT_PREFIX`]).
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// This process's name in what it publishes (default `$HOSTNAME-<pid>`).
    #[must_use]
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = origin.into();
        self
    }

    /// How streams are made (default: 1 replica, changes kept 1 hour, 2-minute duplicate
    /// window).
    #[must_use]
    pub fn stream_settings(mut self, settings: StreamSettings) -> Self {
        self.stream = settings;
        self
    }

    /// The longest a JetStream request (a stream lookup, a publish acknowledgement) may take
    /// (default 2 s).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The metric families to count in (default: new, unregistered ones).
    #[must_use]
    pub fn metrics(mut self, metrics: FleetMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] naming the first bad setting.
    pub fn validate(&self) -> Result<()> {
        let scheme_ok = self.url.split(',').all(|server| {
            let server = server.trim();
            ["nats://", "tls://", "ws://", "wss://"]
                .iter()
                .any(|s| server.starts_with(s) && server.len() > s.len())
        });
        if !scheme_ok {
            return Err(Error::configuration(
                "fleet.nats",
                format!(
                    "'{}' is not a NATS URL (nats://host:port, tls://…, comma-separated for a cluster)",
                    redact_url(&self.url)
                ),
            ));
        }
        check_prefix("fleet.subject_prefix", &self.prefix)?;
        if self.origin.is_empty() || self.origin.len() > crate::message::MAX_ORIGIN_LEN {
            return Err(Error::configuration(
                "fleet.origin",
                "must be 1 to 128 bytes",
            ));
        }
        if self.stream.replicas == 0 || self.stream.replicas > 5 {
            return Err(Error::configuration("fleet.replicas", "must be 1 to 5"));
        }
        if self.stream.max_age.is_zero() {
            return Err(Error::configuration(
                "fleet.max_age",
                "must be longer than zero",
            ));
        }
        if self.stream.duplicate_window.is_zero()
            || self.stream.duplicate_window > self.stream.max_age
        {
            return Err(Error::configuration(
                "fleet.duplicate_window",
                "must be longer than zero and at most fleet.max_age",
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(Error::configuration(
                "fleet.request_timeout",
                "must be longer than zero",
            ));
        }
        Ok(())
    }

    /// Connects. The connection is made in the background and retried for ever, so a
    /// process starts while NATS is down: its caches serve as without a fleet link until it
    /// comes up ([`FleetLink::is_up`] says when).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] for a bad setting or an unreadable TLS file.
    pub async fn connect(self) -> Result<FleetLink> {
        self.validate()?;
        let metrics = self.metrics.clone();
        let events = metrics.clone();
        let mut options = async_nats::ConnectOptions::new()
            .name(self.origin.clone())
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(self.request_timeout)
            .request_timeout(Some(self.request_timeout))
            .reconnect_delay_callback(|attempts| {
                // 0, 50 ms, 100 ms … up to 1 s, jittered: a restarted server sees its fleet
                // come back spread over a second, not in one burst.
                let base = (attempts.min(20) as u64) * 50;
                Duration::from_millis(base.min(1000) + fastrand::u64(0..50))
            })
            .event_callback(move |event| {
                let events = events.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => events.set_link_up(true),
                        async_nats::Event::Disconnected | async_nats::Event::Closed => {
                            events.set_link_up(false);
                        }
                        _ => {}
                    }
                }
            });
        options = match &self.auth {
            NatsAuth::None => options,
            NatsAuth::Token(token) => options.token(
                token
                    .expose_str()
                    .map_err(|_| Error::configuration("fleet.token", "is not UTF-8"))?
                    .to_owned(),
            ),
            NatsAuth::UserPassword { user, password } => options.user_and_password(
                user.clone(),
                password
                    .expose_str()
                    .map_err(|_| Error::configuration("fleet.password", "is not UTF-8"))?
                    .to_owned(),
            ),
            NatsAuth::Credentials(creds) => options
                .credentials(
                    creds
                        .expose_str()
                        .map_err(|_| Error::configuration("fleet.credentials", "is not UTF-8"))?,
                )
                .map_err(|_| {
                    Error::configuration("fleet.credentials", "is not a NATS .creds file")
                })?,
            NatsAuth::NKey(seed) => options.nkey(
                seed.expose_str()
                    .map_err(|_| Error::configuration("fleet.nkey", "is not UTF-8"))?
                    .to_owned(),
            ),
        };
        if let Some(ca) = &self.tls.ca_file {
            if !ca.is_file() {
                return Err(Error::configuration(
                    "fleet.tls.ca_file",
                    format!("{} is not a readable file", ca.display()),
                ));
            }
            options = options.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &self.tls.client_cert {
            for (setting, path) in [("fleet.tls.cert_file", cert), ("fleet.tls.key_file", key)] {
                if !path.is_file() {
                    return Err(Error::configuration(
                        setting,
                        format!("{} is not a readable file", path.display()),
                    ));
                }
            }
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        if self.tls.required {
            options = options.require_tls(true);
        }
        let servers: Vec<String> = self.url.split(',').map(|s| s.trim().to_owned()).collect();
        let client = options
            .connect(servers)
            .await
            .map_err(|e| Error::configuration("fleet.nats", e))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(self.request_timeout)
            .build(client.clone());
        Ok(FleetLink {
            inner: Arc::new(Inner {
                client,
                js,
                prefix: self.prefix,
                origin: self.origin,
                stream: self.stream,
                metrics,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_errors_hide_credentials() {
        let b = FleetLink::builder("nats://alice:hunter2@127.0.0.1:4222")
            .auth(NatsAuth::Token(SecretValue::from("tok-hunter2")));
        let text = format!("{b:?}");
        assert!(!text.contains("hunter2"), "{text}");
        let bad = FleetLink::builder("http://alice:hunter2@x")
            .validate()
            .unwrap_err();
        assert!(!bad.to_string().contains("hunter2"), "{bad}");
        assert!(bad.to_string().contains("fleet.nats"), "{bad}");
    }
}
