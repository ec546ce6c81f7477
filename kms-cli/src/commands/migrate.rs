//! `kms migrate`.

use kms_core::KeyPrefix;

use crate::cli::{ExistingArgs, MigrateArgs};
use crate::context::Ctx;
use crate::exit::CliResult;
use crate::migrate::{Existing, MigrateOptions, migrate};
use crate::progress::Bar;
use crate::summary::report;

/// Copies every key under `--prefix` from FROM to TO, with a progress bar on a terminal and
/// a summary at the end (see [`crate::migrate`]).
///
/// # Errors
///
/// Opening either store, listing FROM; exit 9 when a key failed, 130 when interrupted.
pub async fn run(ctx: &Ctx, args: MigrateArgs) -> CliResult {
    let options = MigrateOptions {
        prefix: KeyPrefix::new(&args.prefix)?,
        dry_run: args.dry_run,
        existing: existing(&args.existing),
        concurrency: usize::from(args.concurrency),
    };
    let from = ctx.target.open_spec(&args.from).await?;
    let to = ctx.target.open_spec(&args.to).await?;
    let progress = Bar::unless(ctx.json, "migrate");
    let summary = migrate(
        from.as_ref(),
        to.as_ref(),
        &options,
        progress.as_ref(),
        &ctx.stop,
    )
    .await?;
    report(&summary, ctx, "migrate")
}

/// The policy the flags choose.
pub fn existing(args: &ExistingArgs) -> Existing {
    if args.overwrite {
        Existing::Overwrite
    } else if args.skip_existing {
        Existing::Skip
    } else {
        Existing::Compare
    }
}
