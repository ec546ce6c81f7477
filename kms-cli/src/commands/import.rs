//! `kms import`.

use kms_core::{KeyStore, MemoryStore};

use crate::bundle::{Bundle, Unseal, is_age, needs_passphrase, unseal};
use crate::cli::ImportArgs;
use crate::commands::migrate::existing;
use crate::context::Ctx;
use crate::exit::{CliResult, Exit, Failure};
use crate::input::passphrase;
use crate::migrate::{MigrateOptions, copy_keys};
use crate::progress::Bar;
use crate::summary::report;

/// The largest value a bundle entry may hold on its way through: far above any store's limit,
/// so the destination's own limit decides (and reports it per key).
const BUNDLE_MAX_VALUE_LEN: usize = 16 * 1024 * 1024;

/// Decrypts a bundle and writes its keys into the store with the rules of `migrate`
/// (equal values skipped, different ones a conflict unless `--overwrite` / `--skip-existing`),
/// each key whole or not at all; prints the same summary.
///
/// # Errors
///
/// A file that cannot be read, decrypted (wrong passphrase / identity: exit 4) or parsed
/// (exit 7); a plaintext file without `--plaintext-i-understand` (exit 2); exit 9 when a key
/// failed, 130 when interrupted.
pub async fn run(ctx: &Ctx, args: ImportArgs) -> CliResult {
    let file = std::fs::read(&args.file)
        .map_err(|e| Failure::io(format_args!("{}", args.file.display()), &e))?;
    let file = zeroize::Zeroizing::new(file);
    let plain = if is_age(&file) {
        if args.protection.plaintext {
            return Err(Failure::usage(format!(
                "{} is age-encrypted; drop --plaintext-i-understand",
                args.file.display()
            )));
        }
        let key = if let Some(path) = &args.identity {
            let ids = age::IdentityFile::from_file(path.display().to_string())
                .map_err(|e| Failure::io(format_args!("{}", path.display()), &e))?
                .into_identities()
                .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
            Unseal::Identities(ids)
        } else if needs_passphrase(&file)? {
            Unseal::Passphrase(passphrase(
                args.protection.passphrase_file.as_deref(),
                false,
            )?)
        } else {
            return Err(Failure::usage(
                "the bundle is encrypted to an age recipient: pass --identity FILE",
            ));
        };
        unseal(&file, &key)?
    } else {
        if !args.protection.plaintext {
            return Err(Failure::usage(format!(
                "{} is not age-encrypted; pass --plaintext-i-understand to import a plaintext bundle",
                args.file.display()
            )));
        }
        zeroize::Zeroizing::new(file.to_vec())
    };
    let bundle = Bundle::from_json(&plain)?;
    drop(plain);
    let source = MemoryStore::builder()
        .max_value_len(BUNDLE_MAX_VALUE_LEN)
        .max_versions(1)
        .build();
    let mut names = Vec::with_capacity(bundle.keys.len());
    for (key, value) in bundle.keys {
        source.store(&key, value).await.map_err(|e| {
            Failure::new(
                Exit::InvalidInput,
                format!("bundle entry {key}: {}", e.message()),
            )
        })?;
        names.push(key);
    }
    let options = MigrateOptions {
        dry_run: args.dry_run,
        existing: existing(&args.existing),
        concurrency: usize::from(args.concurrency),
        ..MigrateOptions::default()
    };
    let store = ctx.target.open().await?;
    let progress = Bar::unless(ctx.json, "import");
    let summary = copy_keys(
        &source,
        store.as_ref(),
        names,
        &options,
        progress.as_ref(),
        &ctx.stop,
    )
    .await;
    report(&summary, ctx, "import")
}
