//! The `kms` binary: parses the command line, sets up tracing and SIGINT, runs the command,
//! and exits with the code of [`kms_cli::exit::Exit`].

use std::process::ExitCode;

use clap::Parser;
use kms_cli::cli::Cli;
use kms_cli::exit::Exit;
use serde_json::json;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.verbose > 0 {
        let level = match cli.verbose {
            1 => "info",
            2 => "debug",
            _ => "trace",
        };
        // This workspace's crates at the asked level, dependencies (HTTP clients, the AWS SDK)
        // at warn: their trace output is noise, and nothing here vouches that it never
        // prints a response body.
        let filter = [
            "kms",
            "kms_cli",
            "kms_core",
            "kms_cache",
            "kms_metrics",
            "kms_backend_vault",
            "kms_backend_aws",
            "kms_backend_keyring",
        ]
        .iter()
        .fold(String::from("warn"), |acc, c| format!("{acc},{c}={level}"));
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kms: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::Other.code());
        }
    };
    let json = cli.json;
    let graceful = kms_cli::stops_gracefully(&cli.command);
    let ctx = kms_cli::context(&cli);
    let stop = ctx.stop.clone();
    let result = runtime.block_on(async move {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            if !graceful {
                std::process::exit(i32::from(Exit::Interrupted.code()));
            }
            stop.set();
            eprintln!("kms: interrupted: finishing the keys in flight, starting no new one (Ctrl-C again quits at once)");
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(i32::from(Exit::Interrupted.code()));
            }
        });
        kms_cli::run(cli, ctx).await
    });
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if json {
                eprintln!(
                    "{}",
                    json!({ "error": {
                        "exit_code": failure.exit.code(),
                        "exit": failure.exit.as_str(),
                        "kind": failure.kind.map(|k| k.as_str()),
                        "message": failure.message,
                    }})
                );
            } else {
                eprintln!("kms: {failure}");
            }
            ExitCode::from(failure.exit.code())
        }
    }
}
