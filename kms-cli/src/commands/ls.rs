//! `kms ls`.

use futures::StreamExt;
use kms_core::{KeyPrefix, KeyStore};
use serde_json::json;

use crate::cli::LsArgs;
use crate::context::Ctx;
use crate::exit::CliResult;
use crate::held::read_held;
use crate::output::{meta_json, stdout, time};

/// Lists names under a prefix, sorted: the names the store lists. With `--long`, each key's
/// version and updated time (read with one `get` per key, eight at a time; values dropped
/// unread), and a listed key the store does not hold (see [`crate::held`]: a soft-deleted
/// Vault KV v2 key) marked as deleted.
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
            return ctx.print_json(
                json!({ "keys": names.iter().map(|k| k.as_str()).collect::<Vec<_>>() }),
            );
        }
        let mut text = String::new();
        for name in &names {
            text.push_str(name.as_str());
            text.push('\n');
        }
        return stdout(&text);
    }
    let store = &store;
    let rows: Vec<_> = futures::stream::iter(names)
        .map(|key| async move {
            let meta = read_held(store.as_ref(), &key)
                .await
                .map(|s| s.map(|s| s.meta));
            (key, meta)
        })
        .buffered(8)
        .collect()
        .await;
    if ctx.json {
        let keys: Vec<_> = rows
            .iter()
            .map(|(key, meta)| match meta {
                Ok(Some(meta)) => {
                    let mut v = meta_json(meta);
                    v["key"] = json!(key.as_str());
                    v
                }
                Ok(None) => json!({ "key": key.as_str(), "deleted": true }),
                Err(e) => json!({ "key": key.as_str(), "error": e.to_string() }),
            })
            .collect();
        return ctx.print_json(json!({ "keys": keys }));
    }
    let width = rows
        .iter()
        .map(|(k, _)| k.as_str().len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut text = format!("{:<width$}  {:<12}  UPDATED\n", "NAME", "VERSION");
    for (key, meta) in &rows {
        let row = match meta {
            Ok(Some(meta)) => {
                let version = meta.version.as_deref().unwrap_or("-");
                let short: String = version.chars().take(12).collect();
                format!(
                    "{:<width$}  {short:<12}  {}",
                    key.as_str(),
                    time(meta.updated_at.or(meta.created_at))
                )
            }
            Ok(None) => format!(
                "{:<width$}  {:<12}  (deleted: listed, not readable)",
                key.as_str(),
                "-"
            ),
            Err(e) => format!("{:<width$}  error: {e}", key.as_str()),
        };
        text.push_str(&row);
        text.push('\n');
    }
    stdout(&text)
}
