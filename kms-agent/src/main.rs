//! `kms-agent --config agent.toml`: the agent as a process.
//!
//! Exit codes: 0 after a clean stop (SIGTERM/SIGINT, every in-flight request answered), 1 when
//! connections were still open at the shutdown bound, 2 when the agent cannot start (the
//! message says why, naming the key of a bad configuration), 3 for `--check` on a bad file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use kms_agent::{Agent, AgentConfig, Signals};

/// A local HTTP agent in front of the kms stack: the AWS Secrets Manager Agent's API (drop-in)
/// and its own, over Vault / OpenBao, AWS Secrets Manager, the OS keyring or memory.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Examples:\n  kms-agent --config /etc/kms-agent/agent.toml\n  kms-agent --config agent.toml --check\n\nSignals: SIGHUP reloads the configuration; SIGTERM drains in-flight requests and exits."
)]
struct Cli {
    /// The configuration file (TOML).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: PathBuf,
    /// Validate the configuration and exit (stores are not built, nothing listens).
    #[arg(long)]
    check: bool,
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match AgentConfig::from_file(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kms-agent: {e}");
            return ExitCode::from(if cli.check { 3 } else { 2 });
        }
    };
    if cli.check {
        println!("{}: ok", cli.config.display());
        return ExitCode::SUCCESS;
    }
    init_logging(config.logging().level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kms-agent: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        // Before anything listens: a SIGHUP must never end the process.
        let signals = match Signals::install() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("kms-agent: cannot install signal handlers: {e}");
                return ExitCode::from(2);
            }
        };
        let agent = match Agent::start(&cli.config).await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("kms-agent: {e}");
                return ExitCode::from(2);
            }
        };
        if let Some(addr) = agent.tcp_addr() {
            println!("kms-agent listening on http://{addr}");
        }
        if let Some(path) = agent.unix_path() {
            println!("kms-agent listening on unix:{}", path.display());
        }
        if let Some(addr) = agent.metrics_addr() {
            println!("kms-agent metrics on http://{addr}/metrics");
        }
        if agent.run(signals).await {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    })
}
