//! `kms export`.

use std::str::FromStr;

use futures::{StreamExt, TryStreamExt};
use kms_core::{KeyPrefix, KeyStore};
use serde_json::json;

use crate::bundle::{Bundle, Seal, seal};
use crate::cli::ExportArgs;
use crate::context::Ctx;
use crate::exit::{CliResult, Exit, Failure};
use crate::held::read_held;
use crate::input::passphrase;
use crate::output::{outln, write_private};

/// Reads every key under `--prefix` and writes them to a new bundle file (mode 0600),
/// age-encrypted to `--recipient`s or a passphrase, or in the clear with
/// `--plaintext-i-understand` (and a warning). The keys are those the store holds (see
/// [`crate::held`]: a listed key that reads as not found, a soft-deleted Vault KV v2 key, is
/// left out and counted). All or nothing: if any key cannot be read, no file is written.
///
/// # Errors
///
/// Listing or reading the store; a bad recipient or no passphrase (exit 2); an existing file
/// (exit 6); interrupted (exit 130, no file).
pub async fn run(ctx: &Ctx, args: ExportArgs) -> CliResult {
    let prefix = KeyPrefix::new(&args.prefix)?;
    let protection = if args.protection.plaintext {
        ctx.warn(format!(
            "--plaintext-i-understand: {} will hold every exported value UNENCRYPTED",
            args.file.display()
        ));
        Seal::Plaintext
    } else if !args.recipient.is_empty() {
        let recipients = args
            .recipient
            .iter()
            .enumerate()
            .map(|(i, r)| age::x25519::Recipient::from_str(r).map_err(|_| bad_recipient(i + 1, r)))
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
    let read: Vec<_> = futures::stream::iter(names)
        .map(|key| async move {
            if stop.is_set() {
                return Err(Failure::new(
                    Exit::Interrupted,
                    "interrupted; no file was written",
                ));
            }
            let secret = read_held(store.as_ref(), &key).await?;
            Ok::<_, Failure>(secret.map(|s| (key, s.value)))
        })
        .buffered(8)
        .try_collect()
        .await?;
    let listed = read.len();
    let keys: Vec<_> = read.into_iter().flatten().collect();
    let not_held = listed - keys.len();
    let bundle = Bundle { keys };
    let how = match &protection {
        Seal::Plaintext => "UNENCRYPTED",
        Seal::Passphrase(_) => "encrypted with a passphrase (age scrypt)",
        Seal::Recipients(_) => "encrypted to age recipients",
    };
    let sealed = seal(&bundle.to_json(), protection)?;
    write_private(&args.file, &sealed)?;
    if ctx.json {
        return ctx.print_json(json!({
            "file": args.file.display().to_string(),
            "keys": bundle.keys.len(),
            "not_held": not_held,
            "protection": how,
        }));
    }
    let left_out = if not_held > 0 {
        format!("; {not_held} listed key(s) are deleted and were left out")
    } else {
        String::new()
    };
    outln!(
        "exported {} key(s) to {} ({how}, mode 0600){left_out}",
        bundle.keys.len(),
        args.file.display()
    )
}

/// The error for the `n`th `--recipient`, which is not one. The text is not echoed: a pasted
/// identity (`AGE-SECRET-KEY-1…`) is a secret key.
fn bad_recipient(n: usize, text: &str) -> Failure {
    let why = if text
        .trim()
        .to_ascii_uppercase()
        .starts_with("AGE-SECRET-KEY-")
    {
        "it is an age identity (a secret key), not a recipient: pass its public key (`age-keygen -y FILE`) and keep the identity for import"
    } else {
        "not an age X25519 recipient (age1…)"
    };
    Failure::usage(format!("--recipient #{n} (not shown): {why}"))
}
