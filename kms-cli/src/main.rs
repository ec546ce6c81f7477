//! The `kms` binary: parses the command line, sets up tracing and SIGINT, runs the command,
//! and exits with the code of [`kms_cli::exit::Exit`].
#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::ffi::OsString;
use std::process::ExitCode;

use kms_cli::exit::{Exit, Failure};
use kms_cli::output::{eline, stdout};
use kms_cli::usage::{Parsed, json_requested, parse};
use serde_json::json;

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let cli = match parse(&argv) {
        Parsed::Run(cli) => *cli,
        Parsed::Show(text) => {
            return match stdout(&text) {
                Ok(()) => ExitCode::SUCCESS,
                Err(failure) => ExitCode::from(failure.exit.code()),
            };
        }
        Parsed::Usage(usage) => {
            if json_requested(&argv) {
                eline(format_args!(
                    "{}",
                    json!({ "error": usage.failure.to_json() })
                ));
            } else {
                kms_cli::output::eprompt(&usage.text());
            }
            return ExitCode::from(usage.failure.exit.code());
        }
    };
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
            // A log line that cannot be written is dropped: the default reports it with
            // `eprintln!`, which panics when stderr is a closed pipe.
            .log_internal_errors(false)
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return finish(
                Err(Failure::new(
                    Exit::Other,
                    format!("cannot start the async runtime: {e}"),
                )),
                cli.json,
                &[],
            );
        }
    };
    let json = cli.json;
    let graceful = kms_cli::stops_gracefully(&cli.command);
    let ctx = kms_cli::context(&cli);
    let stop = ctx.stop.clone();
    let warnings = ctx.warnings.clone();
    let result = runtime.block_on(async move {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            if !graceful {
                std::process::exit(i32::from(Exit::Interrupted.code()));
            }
            stop.set();
            if !json {
                eline(format_args!(
                    "kms: interrupted: finishing the keys in flight, starting no new one (Ctrl-C again quits at once)"
                ));
            }
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(i32::from(Exit::Interrupted.code()));
            }
        });
        kms_cli::run(cli, ctx).await
    });
    runtime.shutdown_background();
    finish(result, json, &warnings.take())
}

/// Reports a failure (unless the command's result already did, or stdout is gone) and
/// returns the exit status.
fn finish(result: Result<(), Failure>, json: bool, warnings: &[String]) -> ExitCode {
    let failure = match result {
        Ok(()) => return ExitCode::SUCCESS,
        Err(f) => f,
    };
    if failure.exit == Exit::BrokenPipe {
        return ExitCode::from(failure.exit.code());
    }
    if json {
        if !failure.reported {
            let mut doc = json!({ "error": failure.to_json() });
            if !warnings.is_empty() {
                doc["warnings"] = json!(warnings);
            }
            eline(format_args!("{doc}"));
        }
    } else {
        eline(format_args!("kms: {failure}"));
    }
    ExitCode::from(failure.exit.code())
}
