//! `kms get`.

use base64::Engine as _;
use kms_core::{KeyName, KeyStore};
use serde_json::json;

use crate::cli::GetArgs;
use crate::context::Ctx;
use crate::exit::CliResult;
use crate::output::{meta_json, print_json, print_pairs, time, write_private};

/// Prints a key's metadata; its value only with `--reveal`; writes it to `--output`.
///
/// # Errors
///
/// What the store returns (not found: exit 3); an output file that exists (exit 6).
pub async fn run(ctx: &Ctx, args: GetArgs) -> CliResult {
    let key = KeyName::new(&args.key)?;
    let store = ctx.target.open().await?;
    let secret = match &args.at_version {
        Some(v) => store.get_version(&key, v).await?,
        None => store.get(&key).await?,
    };
    if let Some(path) = &args.output {
        write_private(path, secret.value.expose_secret())?;
    }
    let text = secret.value.expose_str().ok();
    if ctx.json {
        let mut out = meta_json(&secret.meta);
        out["key"] = json!(key.as_str());
        out["length"] = json!(secret.value.len());
        if let Some(path) = &args.output {
            out["output"] = json!(path.display().to_string());
        }
        if args.reveal {
            match text {
                Some(t) => out["value"] = json!(t),
                None => {
                    out["value_base64"] = json!(
                        base64::engine::general_purpose::STANDARD
                            .encode(secret.value.expose_secret())
                    );
                }
            }
        }
        print_json(&out);
        return Ok(());
    }
    let mut rows = vec![
        ("key", key.to_string()),
        (
            "version",
            secret.meta.version.as_deref().unwrap_or("-").to_owned(),
        ),
        ("created", time(secret.meta.created_at)),
        ("updated", time(secret.meta.updated_at)),
        ("length", format!("{} bytes", secret.value.len())),
    ];
    if let Some(path) = &args.output {
        rows.push(("written", format!("{} (mode 0600)", path.display())));
    }
    if args.reveal {
        match text {
            Some(t) => rows.push(("value", t.to_owned())),
            None => rows.push((
                "value (base64)",
                base64::engine::general_purpose::STANDARD.encode(secret.value.expose_secret()),
            )),
        }
    }
    print_pairs(&rows);
    Ok(())
}
