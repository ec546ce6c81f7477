//! `kms watch`.

use std::time::SystemTime;

use kms_core::{KeyName, KeyStoreExt, StoredSecret};
use serde_json::json;

use crate::cli::WatchArgs;
use crate::compare::values_equal;
use crate::context::Ctx;
use crate::exit::CliResult;
use crate::output::{eline, outln, print_json};

/// Reads the key every `--interval` and prints a line when it changes: the version id, or,
/// for stores without version ids, the value (compared in constant time; never printed);
/// appearing and disappearing count as changes. The first line is the state at start.
/// A failed read is reported (on stderr; with `--json` as an `"event": "error"` line on
/// stdout, so the output stays JSON Lines) and the watch goes on.
///
/// # Errors
///
/// Opening the store. Otherwise it runs until `--changes N` changes or Ctrl-C (exit 130).
pub async fn run(ctx: &Ctx, args: WatchArgs) -> CliResult {
    let key = KeyName::new(&args.key)?;
    let store = ctx.target.open().await?;
    let mut last: Option<Option<StoredSecret>> = None;
    let mut changes = 0u64;
    loop {
        match store.get_opt(&key).await {
            Ok(now) => {
                let changed = match &last {
                    None => true,
                    Some(before) => differs(before.as_ref(), now.as_ref()),
                };
                if changed {
                    print_line(ctx.json, &key, last.is_none(), now.as_ref())?;
                    if last.is_some() {
                        changes += 1;
                    }
                    last = Some(now);
                }
            }
            Err(e) if ctx.json => print_json(&json!({
                "at": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
                "key": key.as_str(),
                "event": "error",
                "error": crate::exit::Failure::from(e).to_json(),
            }))?,
            Err(e) => eline(format_args!("kms watch: {key}: {e}")),
        }
        if args.changes.is_some_and(|n| changes >= n) {
            return Ok(());
        }
        tokio::time::sleep(args.interval).await;
    }
}

fn differs(before: Option<&StoredSecret>, now: Option<&StoredSecret>) -> bool {
    match (before, now) {
        (None, None) => false,
        (Some(a), Some(b)) => match (&a.meta.version, &b.meta.version) {
            (Some(x), Some(y)) => x != y,
            _ => !values_equal(&a.value, &b.value),
        },
        _ => true,
    }
}

fn print_line(json: bool, key: &KeyName, initial: bool, now: Option<&StoredSecret>) -> CliResult {
    let at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let version = now.and_then(|s| s.meta.version.as_deref());
    let event = match (initial, now) {
        (true, _) => "initial",
        (false, None) => "removed",
        (false, Some(_)) => "changed",
    };
    if json {
        print_json(
            &json!({ "at": at, "key": key.as_str(), "event": event, "exists": now.is_some(), "version": version }),
        )
    } else {
        let state = match (now, version) {
            (None, _) => "absent".to_owned(),
            (Some(_), Some(v)) => format!("version {v}"),
            (Some(_), None) => "present (no version id)".to_owned(),
        };
        outln!("{at}  {key}  {event}: {state}")
    }
}
