//! `kms diff`.

use kms_core::{KeyName, KeyPrefix};
use serde_json::json;

use crate::cli::DiffArgs;
use crate::context::Ctx;
use crate::diff::diff;
use crate::exit::{CliResult, Exit, Failure};
use crate::output::stdout;

/// Compares the keys two stores hold under a prefix (see [`crate::held`]): names only in A,
/// only in B, equal, different. Values are compared in constant time and never printed.
///
/// # Errors
///
/// Opening or listing either store; exit 9 if some values could not be read; with
/// `--exit-code`, exit 1 when the stores differ (both already in the printed report).
pub async fn run(ctx: &Ctx, args: DiffArgs) -> CliResult {
    let prefix = KeyPrefix::new(&args.prefix)?;
    let a = ctx.target.open_spec(&args.a).await?;
    let b = ctx.target.open_spec(&args.b).await?;
    let report = diff(a.as_ref(), b.as_ref(), &prefix, 8).await?;
    let failure = if !report.failed.is_empty() {
        Some(Failure::new(
            Exit::Partial,
            format!("{} key(s) could not be compared", report.failed.len()),
        ))
    } else if args.exit_code && !report.is_same() {
        Some(Failure::new(Exit::Other, "the stores differ"))
    } else {
        None
    };
    let names = |v: &[KeyName]| v.iter().map(|k| k.as_str().to_owned()).collect::<Vec<_>>();
    if ctx.json {
        ctx.print_json(json!({
            "only_in_a": names(&report.only_in_a),
            "only_in_b": names(&report.only_in_b),
            "equal": names(&report.equal),
            "different": names(&report.different),
            "failed": report.failed.iter().map(|(k, e)| json!({"key": k.as_str(), "error": e.to_string()})).collect::<Vec<_>>(),
            "not_held": names(&report.not_held),
            "error": failure.as_ref().map(Failure::to_json),
        }))?;
    } else {
        let mut text = String::new();
        for (label, keys) in [
            ("only in A", &report.only_in_a),
            ("only in B", &report.only_in_b),
            ("different", &report.different),
            ("equal    ", &report.equal),
        ] {
            for k in keys {
                text.push_str(&format!("{label}  {k}\n"));
            }
        }
        for (k, e) in &report.failed {
            text.push_str(&format!("failed     {k}: {e}\n"));
        }
        text.push_str(&format!(
            "summary: {} only in A, {} only in B, {} different, {} equal{}{}\n",
            report.only_in_a.len(),
            report.only_in_b.len(),
            report.different.len(),
            report.equal.len(),
            if report.failed.is_empty() {
                String::new()
            } else {
                format!(", {} unreadable", report.failed.len())
            },
            if report.not_held.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} listed but deleted, not compared)",
                    report.not_held.len()
                )
            }
        ));
        stdout(&text)?;
    }
    match failure {
        Some(f) => Err(f.reported()),
        None => Ok(()),
    }
}
