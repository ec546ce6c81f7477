//! [`Agent`]: a running agent: the configuration read, the stores built, the listeners bound
//! and served, the prefetch started; reloaded on request, stopped with a bounded drain.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use futures::future::join_all;
use hyper_util::server::graceful::GracefulShutdown;
use kms::{Error, ErrorKind};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{AgentConfig, AgentSettings};
use crate::live::{EnvLookup, Live};
use crate::metrics::AgentMetrics;
use crate::prefetch;
use crate::server::{ConnectionSettings, Listener, accept_loop};
use crate::service;
use crate::signals::{Asked, Signals};
use crate::snapshot::{Changes, Snapshot};

/// A running agent.
#[derive(Debug)]
pub struct Agent {
    live: Arc<Live>,
    reloader: Arc<Reloader>,
    stop: watch::Sender<bool>,
    server: JoinHandle<bool>,
    tcp: Option<SocketAddr>,
    unix: Option<PathBuf>,
    metrics: Option<SocketAddr>,
}

/// What a reload needs: the file, the settings the listeners were started with, one reload
/// at a time. Shared by [`Agent::reload`] (SIGHUP) and the reload endpoint (through a weak
/// hook in [`Live`], so the endpoint does not keep a stopped agent alive).
#[derive(Debug)]
struct Reloader {
    live: Arc<Live>,
    config_path: PathBuf,
    started_with: AgentSettings,
    reloading: tokio::sync::Mutex<()>,
}

fn listen_error(what: &str, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Configuration,
        format!("cannot listen on {what}: {e}"),
    )
}

type LoopFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

impl Agent {
    /// Starts the agent the file at `config_path` describes, with the process environment.
    ///
    /// # Errors
    ///
    /// An invalid configuration (naming the key), a store that cannot be built, no SSRF token,
    /// a listener that cannot be bound.
    pub async fn start(config_path: impl AsRef<Path>) -> kms::Result<Self> {
        Self::start_with_env(config_path, Arc::new(|k: &str| std::env::var(k).ok())).await
    }

    /// As [`start`](Self::start), looking environment variables up with `env` (tests).
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub async fn start_with_env(
        config_path: impl AsRef<Path>,
        env: EnvLookup,
    ) -> kms::Result<Self> {
        let config_path = config_path.as_ref().to_path_buf();
        let config = AgentConfig::from_file(&config_path)?;
        let settings = config.agent().clone();
        let registry = kms::MetricsRegistry::new();
        let metrics = AgentMetrics::register(&registry, &settings.metrics_prefix);
        let opener = kms::Opener::new().metrics_registry(registry.clone());
        let (snapshot, _) = Snapshot::build(&config, None, &opener, &*env).await?;
        tracing::info!(
            stores = ?snapshot.stores.keys().collect::<Vec<_>>(),
            default = ?snapshot.default_store,
            token_from = snapshot.token.variable(),
            "configuration loaded"
        );
        let live = Arc::new(Live::new(snapshot, metrics, registry, opener, env));

        let mut api = Vec::new();
        let tcp = match settings.tcp {
            Some(addr) => {
                let l = Listener::tcp(addr)
                    .await
                    .map_err(|e| listen_error(&addr.to_string(), e))?;
                let bound = l.local_addr();
                api.push(l);
                bound
            }
            None => None,
        };
        let unix = match &settings.unix {
            Some(u) => {
                api.push(
                    Listener::unix(u)
                        .map_err(|e| listen_error(&u.path.display().to_string(), e))?,
                );
                Some(u.path.clone())
            }
            None => None,
        };
        let (metrics_listener, metrics_addr) = match settings.metrics {
            Some(addr) => {
                let l = Listener::tcp(addr)
                    .await
                    .map_err(|e| listen_error(&addr.to_string(), e))?;
                let bound = l.local_addr();
                (Some(l), bound)
            }
            None => (None, None),
        };
        for l in api.iter().chain(metrics_listener.iter()) {
            tracing::info!(listener = %l.describe(), "listening");
        }

        let (stop, stop_rx) = watch::channel(false);
        let api_service = service::api(live.clone(), settings.limits.request_timeout);
        let metrics_service = service::MetricsEndpoint::new(live.clone());
        let api_settings = ConnectionSettings::api(&settings.limits);
        let metrics_settings = ConnectionSettings::metrics(&settings.limits);
        let server_live = live.clone();
        let server = tokio::spawn(async move {
            let graceful = GracefulShutdown::new();
            let mut loops: Vec<LoopFuture<'_>> = Vec::new();
            for l in api {
                loops.push(Box::pin(accept_loop(
                    l,
                    api_service.clone(),
                    api_settings,
                    server_live.clone(),
                    &graceful,
                    stop_rx.clone(),
                )));
            }
            if let Some(l) = metrics_listener {
                loops.push(Box::pin(accept_loop(
                    l,
                    metrics_service,
                    metrics_settings,
                    server_live.clone(),
                    &graceful,
                    stop_rx.clone(),
                )));
            }
            join_all(loops).await;
            let bound = server_live.snapshot().agent.shutdown_timeout;
            let open = graceful.count();
            tracing::info!(connections = open, bound = %kms::duration::format(bound), "draining");
            let drained = tokio::time::timeout(bound, graceful.shutdown())
                .await
                .is_ok();
            if !drained {
                tracing::warn!("connections still open after the shutdown bound: closing them");
            }
            drained
        });
        prefetch::spawn(live.clone(), true);
        let reloader = Arc::new(Reloader {
            live: live.clone(),
            config_path,
            started_with: settings,
            reloading: tokio::sync::Mutex::new(()),
        });
        let weak = Arc::downgrade(&reloader);
        live.set_reload_hook(Arc::new(move || {
            let reloader = weak.upgrade();
            Box::pin(async move {
                match reloader {
                    Some(r) => r.reload().await,
                    None => Err(Error::new(ErrorKind::Unavailable, "the agent is stopping")),
                }
            })
        }));
        Ok(Self {
            live,
            reloader,
            stop,
            server,
            tcp,
            unix,
            metrics: metrics_addr,
        })
    }

    /// The TCP listener's address.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
    }

    /// The Unix socket's path.
    pub fn unix_path(&self) -> Option<&Path> {
        self.unix.as_deref()
    }

    /// The metrics listener's address.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
    }

    /// The shared state (snapshot, metrics, status).
    pub fn live(&self) -> &Arc<Live> {
        &self.live
    }

    /// Re-reads the configuration file and applies it: stores whose configuration is
    /// unchanged keep serving (their caches too), changed ones are rebuilt, new ones built,
    /// removed ones dropped, the token found again. If anything fails, nothing changes: the
    /// previous configuration keeps serving, and the error is logged, counted
    /// (`<p>_agent_config_reloads_total{result="failure"}`) and reported in `/readyz`.
    ///
    /// Listener addresses, connection limits, the request timeout and the metrics prefix
    /// take effect at the next start (a warning says so when they changed).
    ///
    /// # Errors
    ///
    /// Why the new configuration was refused.
    pub async fn reload(&self) -> kms::Result<Changes> {
        self.reloader.reload().await
    }

    /// Stops accepting, lets in-flight requests finish within `[agent] shutdown_timeout`,
    /// closes the rest. Returns whether every connection finished in time.
    pub async fn shutdown(self) -> bool {
        let _ = self.stop.send(true);
        let drained = self.server.await.unwrap_or(false);
        tracing::info!(drained, "stopped");
        drained
    }

    /// Serves until SIGTERM or SIGINT (then [`shutdown`](Self::shutdown)), reloading on
    /// SIGHUP.
    pub async fn run(self, mut signals: Signals) -> bool {
        loop {
            match signals.next().await {
                Asked::Stop => break,
                Asked::Reload => {
                    let _ = self.reload().await;
                }
            }
        }
        self.shutdown().await
    }
}

impl Reloader {
    /// See [`Agent::reload`].
    async fn reload(&self) -> kms::Result<Changes> {
        let _one_at_a_time = self.reloading.lock().await;
        let result: kms::Result<Changes> = async {
            let config = AgentConfig::from_file(&self.config_path)?;
            self.warn_on_restart_only_changes(config.agent());
            let previous = self.live.snapshot();
            let (snapshot, changes) = Snapshot::build(
                &config,
                Some(&previous),
                self.live.opener(),
                &**self.live.env(),
            )
            .await?;
            self.live.replace(snapshot);
            Ok(changes)
        }
        .await;
        match &result {
            Ok(changes) => {
                tracing::info!(
                    kept = ?changes.kept,
                    rebuilt = ?changes.rebuilt,
                    added = ?changes.added,
                    removed = ?changes.removed,
                    "configuration reloaded"
                );
                self.live.record_reload(Ok(()));
                prefetch::spawn(self.live.clone(), false);
            }
            Err(e) => {
                tracing::error!(error = %e, "configuration reload refused: the previous configuration keeps serving");
                self.live.record_reload(Err(e.to_string()));
            }
        }
        result
    }

    fn warn_on_restart_only_changes(&self, new: &AgentSettings) {
        let old = &self.started_with;
        let mut changed = Vec::new();
        if new.tcp != old.tcp {
            changed.push("agent.tcp");
        }
        if new.unix != old.unix {
            changed.push("agent.unix");
        }
        if new.metrics != old.metrics {
            changed.push("agent.metrics");
        }
        if new.metrics_prefix != old.metrics_prefix {
            changed.push("agent.metrics_prefix");
        }
        let (l, o) = (&new.limits, &old.limits);
        if (
            l.max_header_bytes,
            l.max_headers,
            l.header_read_timeout,
            l.request_timeout,
        ) != (
            o.max_header_bytes,
            o.max_headers,
            o.header_read_timeout,
            o.request_timeout,
        ) {
            changed.push("agent.limits");
        }
        if !changed.is_empty() {
            tracing::warn!(settings = ?changed, "changed settings take effect at the next start");
        }
    }
}
