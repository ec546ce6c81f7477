//! `kms put`.

use kms_core::{KeyName, KeyStore, SecretValue};
use serde_json::json;
use zeroize::Zeroize;

use crate::cli::PutArgs;
use crate::context::Ctx;
use crate::exit::CliResult;
use crate::input::read_value;
use crate::output::{meta_json, print_json};

/// Writes a key from stdin, `--file` or (with a warning) `--value`; prints the new version.
///
/// # Errors
///
/// With `--cas VERSION` the write goes through [`KeyStore::store_if_version`]:
/// [`ErrorKind::Conflict`](kms_core::ErrorKind::Conflict) (exit 6) when the current version is not VERSION (`0`: when the key
/// exists), [`ErrorKind::Unsupported`](kms_core::ErrorKind::Unsupported) (exit 8) from stores without an atomic check-and-set
/// (AWS Secrets Manager, the keyrings). Otherwise what the store returns (an empty or
/// oversized value: exit 7).
pub async fn run(ctx: &Ctx, mut args: PutArgs) -> CliResult {
    let key = KeyName::new(&args.key)?;
    let store = ctx.target.open().await?;
    // `--cas 0`: only if the key does not exist (Vault's convention).
    let cas = args
        .cas
        .as_deref()
        .map(|v| if v == "0" { None } else { Some(v) });
    let value = match args.value.take() {
        Some(mut text) => {
            eprintln!(
                "warning: --value puts the secret in argv, visible to every user in `ps` and kept in shell history; prefer stdin or --file"
            );
            let value = SecretValue::copy_from_slice(text.as_bytes());
            text.zeroize();
            value
        }
        None => read_value(args.file.as_deref(), key.as_str())?,
    };
    let meta = match cas {
        Some(expected) => store.store_if_version(&key, value, expected).await?,
        None => store.store(&key, value).await?,
    };
    if ctx.json {
        let mut out = meta_json(&meta);
        out["key"] = json!(key.as_str());
        print_json(&out);
    } else {
        match meta.version.as_deref() {
            Some(v) => println!("stored {key} (version {v})"),
            None => println!("stored {key}"),
        }
    }
    Ok(())
}
