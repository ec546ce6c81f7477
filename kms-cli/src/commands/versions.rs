//! `kms versions`.

use kms_core::{KeyName, KeyStore};
use serde_json::{Value, json};

use crate::cli::VersionsArgs;
use crate::context::Ctx;
use crate::exit::CliResult;
use crate::output::{meta_json, outln, print_pairs, time};

/// Shows what the `KeyStore` trait can tell about a key's versions: the current one always;
/// earlier ones only where the store keeps versions (`capabilities().versions`) *and* its
/// version ids are counters (Vault KV v2, memory), by reading `get_version` of each earlier
/// number. Stores with opaque ids (AWS version UUIDs) or no versions (the keyring, Vault KV
/// v1) cannot be enumerated through the trait, and the output says so.
///
/// # Errors
///
/// What `get` of the current version returns (not found: exit 3).
pub async fn run(ctx: &Ctx, args: VersionsArgs) -> CliResult {
    let key = KeyName::new(&args.key)?;
    let store = ctx.target.open().await?;
    let current = store.get(&key).await?;
    let caps = store.capabilities();
    let current_id = current.meta.version.as_deref().map(str::to_owned);
    let mut earlier: Vec<(String, Value)> = Vec::new();
    let note = match (&current_id, caps.versions) {
        (_, false) => Some(format!(
            "the {} store keeps no earlier versions; only the current value exists",
            store.backend()
        )),
        (None, true) => Some("the store reports no version id".to_owned()),
        (Some(id), true) => match id.parse::<u64>() {
            Ok(n) => {
                let oldest = n.saturating_sub(args.limit).max(1);
                for v in (oldest..n).rev() {
                    let id = v.to_string();
                    let state = match store.get_version(&key, &id).await {
                        Ok(s) => meta_json(&s.meta),
                        Err(e) if e.is_not_found() => {
                            json!({ "version": id, "state": "deleted or destroyed" })
                        }
                        Err(e) => json!({ "version": id, "error": e.to_string() }),
                    };
                    earlier.push((id, state));
                }
                (oldest > 1).then(|| format!("older versions than {oldest} not shown (--limit)"))
            }
            Err(_) => Some(format!(
                "the {} store's version ids are opaque ({id}); earlier versions exist but cannot be enumerated through the KeyStore trait (`kms get --version ID` reads one you know)",
                store.backend()
            )),
        },
    };
    if ctx.json {
        let mut cur = meta_json(&current.meta);
        cur["current"] = json!(true);
        let mut all = vec![cur];
        all.extend(earlier.into_iter().map(|(_, v)| v));
        return ctx.print_json(json!({ "key": key.as_str(), "versions": all, "note": note }));
    }
    let mut rows = vec![(
        "current",
        format!(
            "{}  created {}",
            current_id.as_deref().unwrap_or("-"),
            time(current.meta.created_at)
        ),
    )];
    for (id, state) in &earlier {
        let text = if let Some(s) = state.get("state").and_then(Value::as_str) {
            format!("{id}  {s}")
        } else if let Some(e) = state.get("error").and_then(Value::as_str) {
            format!("{id}  error: {e}")
        } else {
            format!(
                "{id}  created {}",
                state["created_at"].as_str().unwrap_or("-")
            )
        };
        rows.push(("earlier", text));
    }
    print_pairs(&rows)?;
    match note {
        Some(note) => outln!("note: {note}"),
        None => Ok(()),
    }
}
