#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
// Every byte goes through `output`, which handles a closed pipe; the print macros panic.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod bundle;
pub mod cli;
pub mod commands;
pub mod compare;
pub mod context;
pub mod diff;
pub mod exit;
pub mod field;
pub mod held;
pub mod input;
pub mod migrate;
pub mod open;
pub mod output;
pub mod progress;
pub mod redact;
pub mod stop;
pub mod summary;
pub mod usage;
pub mod version_arg;

use clap::CommandFactory;

use crate::cli::{Cli, Command};
use crate::context::Ctx;
use crate::exit::CliResult;
use crate::open::Target;

/// Whether a command stops between keys on the first SIGINT (and reports what it did)
/// rather than exiting at once.
pub fn stops_gracefully(command: &Command) -> bool {
    matches!(
        command,
        Command::Migrate(_) | Command::Import(_) | Command::Export(_)
    )
}

/// Runs a parsed command line.
///
/// # Errors
///
/// The command's [`exit::Failure`], whose `exit` is the process status.
pub async fn run(cli: Cli, ctx: Ctx) -> CliResult {
    match cli.command {
        Command::Get(a) => commands::get::run(&ctx, a).await,
        Command::Put(a) => commands::put::run(&ctx, a).await,
        Command::Ls(a) => commands::ls::run(&ctx, a).await,
        Command::Rm(a) => commands::rm::run(&ctx, a).await,
        Command::Versions(a) => commands::versions::run(&ctx, a).await,
        Command::Rotate(a) => commands::rotate::run(&ctx, a).await,
        Command::Copy(a) => commands::copy::run(&ctx, a).await,
        Command::Migrate(a) => commands::migrate::run(&ctx, a).await,
        Command::Diff(a) => commands::diff::run(&ctx, a).await,
        Command::Export(a) => commands::export::run(&ctx, a).await,
        Command::Import(a) => commands::import::run(&ctx, a).await,
        Command::Health => commands::health::run(&ctx).await,
        Command::Watch(a) => commands::watch::run(&ctx, a).await,
        Command::Completions(a) => {
            // Into memory first: clap_complete panics when its writer fails.
            let mut script = Vec::new();
            clap_complete::generate(a.shell, &mut Cli::command(), "kms", &mut script);
            output::stdout(&String::from_utf8_lossy(&script))
        }
    }
}

/// The context of the global options.
pub fn context(cli: &Cli) -> Ctx {
    Ctx {
        target: Target {
            store: cli.store.clone(),
            config: cli.config.clone(),
            name: cli.name.clone(),
        },
        json: cli.json,
        verbose: cli.verbose,
        stop: stop::Stop::new(),
        warnings: context::Warnings::default(),
    }
}
