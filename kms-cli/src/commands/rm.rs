//! `kms rm`.

use std::io::{BufRead, IsTerminal};

use kms_core::{KeyName, KeyStore};
use serde_json::json;

use crate::cli::RmArgs;
use crate::context::Ctx;
use crate::exit::{CliResult, Exit, Failure};
use crate::output::{eprompt, stdout};

/// Removes keys, after asking on the terminal unless `--yes`.
///
/// # Errors
///
/// [`Exit::Usage`] without `--yes` when stdin is not a terminal (nothing removed);
/// [`Exit::Other`] when the answer is not yes; one key's error for one key; [`Exit::Partial`]
/// when some of several keys failed.
pub async fn run(ctx: &Ctx, args: RmArgs) -> CliResult {
    let keys = args
        .keys
        .iter()
        .map(KeyName::new)
        .collect::<Result<Vec<_>, _>>()?;
    let store = ctx.target.open().await?;
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::usage(
                "refusing to remove without --yes: stdin is not a terminal to ask on; nothing was removed",
            ));
        }
        let list: Vec<&str> = keys.iter().map(KeyName::as_str).collect();
        eprompt(&format!(
            "remove {} key(s) from {store}: {}? [y/N] ",
            keys.len(),
            list.join(", ")
        ));
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| Failure::io("reading the answer", &e))?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            return Err(Failure::new(
                Exit::Other,
                "not confirmed; nothing was removed",
            ));
        }
    }
    let mut results = Vec::with_capacity(keys.len());
    for key in &keys {
        results.push((key, store.remove(key).await));
    }
    let errors: Vec<_> = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().err())
        .collect();
    let failure = match (errors.len(), keys.len()) {
        (0, _) => None,
        (_, 1) => errors.first().map(|e| Failure::from((*e).clone())),
        (n, total) => Some(Failure::new(
            Exit::Partial,
            format!("{n} of {total} keys were not removed"),
        )),
    };
    if ctx.json {
        let out: Vec<_> = results
            .iter()
            .map(|(k, r)| match r {
                Ok(()) => json!({ "key": k.as_str(), "removed": true }),
                Err(e) => json!({ "key": k.as_str(), "removed": false, "error": e.to_string() }),
            })
            .collect();
        ctx.print_json(json!({ "keys": out, "error": failure.as_ref().map(Failure::to_json) }))?;
    } else {
        let mut text = String::new();
        for (key, result) in &results {
            match result {
                Ok(()) => text.push_str(&format!("removed {key}\n")),
                Err(e) => text.push_str(&format!("failed  {key}: {e}\n")),
            }
        }
        stdout(&text)?;
    }
    match failure {
        Some(f) => Err(f.reported()),
        None => Ok(()),
    }
}
