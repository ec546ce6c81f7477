//! `kms watch`.

use std::sync::Arc;
use std::time::SystemTime;

use futures::StreamExt;
use kms_core::rotation::{Watch, WatchEvent};
use kms_core::{KeyName, KeyPrefix, SecretMeta};
use serde_json::json;

use crate::cli::WatchArgs;
use crate::context::Ctx;
use crate::exit::CliResult;
use crate::output::{eline, outln, print_json};

/// Follows a key (or, with `--prefix`, every key under a prefix) with
/// [`kms_core::rotation::Watch`]: reads every `--interval` (± 10 %) and prints a line per
/// change: a new version id, or for stores without version ids a different value (compared
/// in constant time; never printed); appearing and disappearing count as changes. The first
/// lines are the state at start. A failed read is reported once per outage (on stderr; with
/// `--json` as an `"event": "error"` line on stdout, so the output stays JSON Lines) and the
/// watch goes on.
///
/// # Errors
///
/// Opening the store, a bad key or prefix. Otherwise it runs until `--changes N` changes or
/// Ctrl-C (exit 130).
pub async fn run(ctx: &Ctx, args: WatchArgs) -> CliResult {
    let watch = if args.prefix {
        Watch::prefix(KeyPrefix::new(&args.key)?)
    } else {
        Watch::key(KeyName::new(&args.key)?)
    };
    let store = ctx.target.open().await?;
    let mut events = watch.interval(args.interval).stream(Arc::clone(&store));
    let mut changes = 0u64;
    while let Some(event) = events.next().await {
        let at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        match event {
            WatchEvent::Present {
                key, meta, initial, ..
            } => {
                print_line(ctx.json, &at, &key, initial, Some(&meta))?;
                changes += u64::from(!initial);
            }
            WatchEvent::Absent { key, initial } => {
                print_line(ctx.json, &at, &key, initial, None)?;
                changes += u64::from(!initial);
            }
            WatchEvent::Error { key, error } => {
                let name = key.as_ref().map_or(args.key.as_str(), KeyName::as_str);
                if ctx.json {
                    print_json(&json!({
                        "at": at,
                        "key": name,
                        "event": "error",
                        "error": crate::exit::Failure::from(error).to_json(),
                    }))?;
                } else {
                    eline(format_args!("kms watch: {name}: {error}"));
                }
            }
            // A kind of item this version does not know: nothing to print.
            _ => {}
        }
        if args.changes.is_some_and(|n| changes >= n) {
            return Ok(());
        }
    }
    Ok(())
}

fn print_line(
    json: bool,
    at: &str,
    key: &KeyName,
    initial: bool,
    now: Option<&SecretMeta>,
) -> CliResult {
    let version = now.and_then(|m| m.version.as_deref());
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
