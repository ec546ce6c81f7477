//! `kms put`.

use kms_core::{Error, ErrorKind, KeyName, KeyStore, SecretValue};
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
/// [`ErrorKind::Unsupported`] (exit 8) for `--cas`: the `KeyStore` trait has no conditional
/// write, so no store opened through it can check-and-set; what the store returns (an empty
/// or oversized value: exit 7).
pub async fn run(ctx: &Ctx, mut args: PutArgs) -> CliResult {
    let key = KeyName::new(&args.key)?;
    let store = ctx.target.open().await?;
    if let Some(version) = &args.cas {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "--cas {version}: check-and-set is not supported by this store ({}): the KeyStore trait has no conditional write; nothing was written",
                store.backend()
            ),
        )
        .into());
    }
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
    let meta = store.store(&key, value).await?;
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
