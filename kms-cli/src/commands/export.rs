//! `kms export`.

use std::str::FromStr;

use futures::{StreamExt, TryStreamExt};
use kms_core::{KeyPrefix, KeyStore};
use serde_json::json;

use crate::bundle::{Bundle, Seal, seal};
use crate::cli::ExportArgs;
use crate::context::Ctx;
use crate::exit::{CliResult, Exit, Failure};
use crate::input::passphrase;
use crate::output::{print_json, write_private};

/// Reads every key under `--prefix` and writes them to a new bundle file (mode 0600),
/// age-encrypted to `--recipient`s or a passphrase, or in the clear with
/// `--plaintext-i-understand` (and a warning). All or nothing: if any key cannot be read,
/// no file is written.
///
/// # Errors
///
/// Listing or reading the store; a bad recipient or no passphrase (exit 2); an existing file
/// (exit 6); interrupted (exit 130, no file).
pub async fn run(ctx: &Ctx, args: ExportArgs) -> CliResult {
    let prefix = KeyPrefix::new(&args.prefix)?;
    let protection = if args.protection.plaintext {
        eprintln!(
            "WARNING: --plaintext-i-understand: {} will hold every exported value UNENCRYPTED",
            args.file.display()
        );
        Seal::Plaintext
    } else if !args.recipient.is_empty() {
        let recipients = args
            .recipient
            .iter()
            .map(|r| {
                age::x25519::Recipient::from_str(r).map_err(|e| {
                    Failure::usage(format!("--recipient {r}: not an age X25519 recipient: {e}"))
                })
            })
            .collect::<CliResult<Vec<_>>>()?;
        Seal::Recipients(recipients)
    } else {
        Seal::Passphrase(passphrase(
            args.protection.passphrase_file.as_deref(),
            true,
        )?)
    };
    if args.file.exists() {
        return Err(Failure::new(
            Exit::Conflict,
            format!("{} exists; export never overwrites", args.file.display()),
        ));
    }
    let store = ctx.target.open().await?;
    let mut names = store.list(&prefix).await?;
    names.sort();
    let store = &store;
    let stop = &ctx.stop;
    let keys: Vec<_> = futures::stream::iter(names)
        .map(|key| async move {
            if stop.is_set() {
                return Err(Failure::new(
                    Exit::Interrupted,
                    "interrupted; no file was written",
                ));
            }
            let secret = store.get(&key).await?;
            Ok::<_, Failure>((key, secret.value))
        })
        .buffered(8)
        .try_collect()
        .await?;
    let bundle = Bundle { keys };
    let how = match &protection {
        Seal::Plaintext => "UNENCRYPTED",
        Seal::Passphrase(_) => "encrypted with a passphrase (age scrypt)",
        Seal::Recipients(_) => "encrypted to age recipients",
    };
    let sealed = seal(&bundle.to_json(), protection)?;
    write_private(&args.file, &sealed)?;
    if ctx.json {
        print_json(
            &json!({ "file": args.file.display().to_string(), "keys": bundle.keys.len(), "protection": how }),
        );
    } else {
        println!(
            "exported {} key(s) to {} ({how}, mode 0600)",
            bundle.keys.len(),
            args.file.display()
        );
    }
    Ok(())
}
