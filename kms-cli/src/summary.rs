//! The summary of a run over many keys (migrate, import): counts, then a table of every key
//! not copied with the reason; and the exit that goes with it.

use serde_json::json;

use crate::exit::{CliResult, Exit, Failure};
use crate::migrate::{Outcome, Summary};
use crate::output::print_json;

/// Prints `summary` (JSON or a table on stdout) and returns the exit: 0 when complete,
/// [`Exit::Interrupted`] when stopped, [`Exit::Partial`] when a key failed.
///
/// # Errors
///
/// As said: interrupted or partial.
pub fn report(summary: &Summary, json: bool, verb: &str) -> CliResult {
    let counts = summary.counts();
    if json {
        let keys: Vec<_> = summary
            .keys
            .iter()
            .map(|k| json!({ "key": k.key.as_str(), "status": k.outcome.status(), "reason": k.outcome.reason() }))
            .collect();
        print_json(&json!({
            "dry_run": summary.dry_run,
            "interrupted": summary.interrupted,
            "counts": counts,
            "keys": keys,
        }));
    } else {
        let would = if summary.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        };
        println!("{verb}: {counts}{would}");
        let notable: Vec<_> = summary
            .keys
            .iter()
            .filter(|k| !matches!(k.outcome, Outcome::Copied | Outcome::NotStarted))
            .collect();
        if !notable.is_empty() {
            let width = notable
                .iter()
                .map(|k| k.key.as_str().len())
                .max()
                .unwrap_or(3)
                .max(3);
            println!("{:<width$}  {:<7}  REASON", "KEY", "STATUS");
            for k in notable {
                println!(
                    "{:<width$}  {:<7}  {}",
                    k.key.as_str(),
                    k.outcome.status(),
                    k.outcome.reason().unwrap_or_default()
                );
            }
        }
        if summary.interrupted {
            println!(
                "interrupted: {} key(s) not started; run the same command again to finish (keys already copied are skipped)",
                counts.not_started
            );
        }
    }
    if summary.interrupted {
        Err(Failure::new(
            Exit::Interrupted,
            format!("interrupted: {counts}"),
        ))
    } else if counts.failed > 0 {
        Err(Failure::new(
            Exit::Partial,
            format!("{} key(s) failed: {counts}", counts.failed),
        ))
    } else {
        Ok(())
    }
}
