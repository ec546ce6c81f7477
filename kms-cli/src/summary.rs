//! The summary of a run over many keys (migrate, import) and the exit that goes with it.
//!
//! Text: one line of counts that says what happened (`copied 3, skipped 197, failed 1 (197
//! unchanged, 1 conflict)`; a dry run says `would copy`), then one row per key that changed
//! or failed, conflicts first, then other failures, then keys kept, overwritten, copied.
//! Unchanged keys, keys the source does not hold and keys not started get a row only with
//! `-v`: a re-run over 200 keys with one conflict prints that one row. JSON: the counts, the
//! details and every key.

use serde_json::json;

use crate::context::Ctx;
use crate::exit::{CliResult, Exit, Failure};
use crate::migrate::{Counts, Details, KeyOutcome, Summary};
use crate::output::stdout;

/// Prints `summary` (JSON or text on stdout) and returns the exit: 0 when complete,
/// [`Exit::Interrupted`] when stopped, [`Exit::Partial`] when a key failed.
///
/// # Errors
///
/// As said: interrupted or partial (already in the printed summary); a closed stdout.
pub fn report(summary: &Summary, ctx: &Ctx, verb: &str) -> CliResult {
    let counts = summary.counts();
    let details = summary.details();
    let failure = if summary.interrupted {
        Some(Failure::new(
            Exit::Interrupted,
            format!("interrupted: {counts}"),
        ))
    } else if counts.failed > 0 {
        Some(Failure::new(
            Exit::Partial,
            format!("{} key(s) failed: {counts}", counts.failed),
        ))
    } else {
        None
    };
    if ctx.json {
        let keys: Vec<_> = summary
            .keys
            .iter()
            .map(|k| {
                json!({
                    "key": k.key.as_str(),
                    "status": k.outcome.status(),
                    "detail": k.outcome.detail(),
                    "reason": k.outcome.reason(),
                })
            })
            .collect();
        let mut all = json!(counts);
        if let (Some(all), serde_json::Value::Object(more)) = (all.as_object_mut(), json!(details))
        {
            all.extend(more);
        }
        ctx.print_json(json!({
            "dry_run": summary.dry_run,
            "interrupted": summary.interrupted,
            "counts": all,
            "keys": keys,
            "error": failure.as_ref().map(Failure::to_json),
        }))?;
    } else {
        stdout(&text(summary, verb, &counts, &details, ctx.verbose > 0))?;
    }
    match failure {
        Some(f) => Err(f.reported()),
        None => Ok(()),
    }
}

/// The text summary.
fn text(
    summary: &Summary,
    verb: &str,
    counts: &Counts,
    details: &Details,
    verbose: bool,
) -> String {
    let mut out = if summary.dry_run {
        format!(
            "{verb} --dry-run: would copy {}, skip {}, fail {}",
            counts.copied, counts.skipped, counts.failed
        )
    } else {
        format!("{verb}: {counts}")
    };
    let mut why = Vec::new();
    for (n, what) in [
        (details.unchanged, "unchanged"),
        (details.kept, "kept by --skip-existing"),
        (details.overwritten, "overwritten"),
        (
            details.conflicts,
            if details.conflicts == 1 {
                "conflict"
            } else {
                "conflicts"
            },
        ),
        (details.not_held, "listed but deleted in the source"),
    ] {
        if n > 0 {
            why.push(format!("{n} {what}"));
        }
    }
    if !why.is_empty() {
        out.push_str(&format!(" ({})", why.join(", ")));
    }
    if summary.dry_run {
        out.push_str("; nothing written");
    }
    out.push('\n');
    let mut rows: Vec<&KeyOutcome> = summary
        .keys
        .iter()
        .filter(|k| verbose || rank(k) < QUIET)
        .collect();
    rows.sort_by_key(|k| rank(k));
    if !rows.is_empty() {
        let width = rows
            .iter()
            .map(|k| k.key.as_str().len())
            .max()
            .unwrap_or(3)
            .max(3);
        let status = |k: &KeyOutcome| {
            let word = k.outcome.detail();
            match (summary.dry_run, word) {
                (true, "new") => "would copy",
                (true, "overwritten") => "would overwrite",
                (false, "new") => "copied",
                (_, "not_held") => "not held",
                (_, "not_started") => "not started",
                _ => word,
            }
        };
        let status_width = rows
            .iter()
            .map(|k| status(k).len())
            .max()
            .unwrap_or(6)
            .max(6);
        out.push_str(&format!(
            "{:<width$}  {:<status_width$}  REASON\n",
            "KEY", "STATUS"
        ));
        for k in rows {
            let row = format!(
                "{:<width$}  {:<status_width$}  {}",
                k.key.as_str(),
                status(k),
                k.outcome.reason().unwrap_or_default()
            );
            out.push_str(row.trim_end());
            out.push('\n');
        }
    }
    if summary.interrupted {
        out.push_str(&format!(
            "interrupted: {} key(s) not started; run the same command again to finish (keys already copied are skipped)\n",
            counts.not_started
        ));
    }
    out
}

/// Rows at or past this rank are shown only with `-v`.
const QUIET: u8 = 5;

/// The order of the rows: conflicts, other failures, kept, overwritten, copied; then, with
/// `-v`, unchanged, not held, not started.
fn rank(k: &KeyOutcome) -> u8 {
    match k.outcome.detail() {
        "conflict" => 0,
        "failed" => 1,
        "kept" => 2,
        "overwritten" => 3,
        "new" => 4,
        "unchanged" => 5,
        "not_held" => 6,
        _ => 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::Outcome;
    use kms_core::{Error, ErrorKind, KeyName};

    fn summary(dry_run: bool) -> Summary {
        let mut keys: Vec<KeyOutcome> = (0..200)
            .map(|i| KeyOutcome {
                key: KeyName::new(format!("k{i:03}")).unwrap(),
                outcome: Outcome::Unchanged,
            })
            .collect();
        keys[100].outcome = Outcome::Failed(Error::new(ErrorKind::Conflict, "differs"));
        keys[150].outcome = Outcome::Copied;
        Summary {
            keys,
            dry_run,
            interrupted: false,
        }
    }

    #[test]
    fn a_rerun_prints_the_changes_and_failures_only_conflicts_first() {
        let s = summary(false);
        let out = text(&s, "migrate", &s.counts(), &s.details(), false);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "migrate: copied 1, skipped 198, failed 1 (198 unchanged, 1 conflict)"
        );
        assert_eq!(lines.len(), 4, "{out}");
        assert!(lines[2].starts_with("k100  conflict"), "{out}");
        assert!(lines[3].starts_with("k150  copied"), "{out}");
        let verbose = text(&s, "migrate", &s.counts(), &s.details(), true);
        assert_eq!(verbose.lines().count(), 202, "{verbose}");
    }

    #[test]
    fn a_dry_run_says_would() {
        let s = summary(true);
        let out = text(&s, "migrate", &s.counts(), &s.details(), false);
        assert!(
            out.starts_with(
                "migrate --dry-run: would copy 1, skip 198, fail 1 (198 unchanged, 1 conflict); nothing written\n"
            ),
            "{out}"
        );
        assert!(out.contains("k150  would copy"), "{out}");
        assert!(!out.contains("copied"), "{out}");
    }
}
