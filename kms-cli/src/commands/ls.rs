//! `kms ls`.

use futures::StreamExt;
use kms_core::{KeyPrefix, KeyStore};
use serde_json::json;

use crate::cli::LsArgs;
use crate::context::Ctx;
use crate::exit::CliResult;
use crate::output::{meta_json, print_json, time};

/// Lists names under a prefix, sorted; with `--long`, each key's version and updated time
/// (read with one `get` per key, eight at a time; values dropped unread).
///
/// # Errors
///
/// What `list` returns (exit 8 if the store cannot list).
pub async fn run(ctx: &Ctx, args: LsArgs) -> CliResult {
    let prefix = KeyPrefix::new(&args.prefix)?;
    let store = ctx.target.open().await?;
    let mut names = store.list(&prefix).await?;
    names.sort();
    if !args.long {
        if ctx.json {
            print_json(&json!({ "keys": names.iter().map(|k| k.as_str()).collect::<Vec<_>>() }));
        } else {
            for name in &names {
                println!("{name}");
            }
        }
        return Ok(());
    }
    let store = &store;
    let rows: Vec<_> = futures::stream::iter(names)
        .map(|key| async move {
            let meta = store.get(&key).await.map(|s| s.meta);
            (key, meta)
        })
        .buffered(8)
        .collect()
        .await;
    if ctx.json {
        let keys: Vec<_> = rows
            .iter()
            .map(|(key, meta)| match meta {
                Ok(meta) => {
                    let mut v = meta_json(meta);
                    v["key"] = json!(key.as_str());
                    v
                }
                Err(e) => json!({ "key": key.as_str(), "error": e.to_string() }),
            })
            .collect();
        print_json(&json!({ "keys": keys }));
        return Ok(());
    }
    let width = rows
        .iter()
        .map(|(k, _)| k.as_str().len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!("{:<width$}  {:<12}  UPDATED", "NAME", "VERSION");
    for (key, meta) in &rows {
        match meta {
            Ok(meta) => {
                let version = meta.version.as_deref().unwrap_or("-");
                let short: String = version.chars().take(12).collect();
                println!(
                    "{:<width$}  {short:<12}  {}",
                    key.as_str(),
                    time(meta.updated_at.or(meta.created_at))
                );
            }
            Err(e) => println!("{:<width$}  error: {e}", key.as_str()),
        }
    }
    Ok(())
}
