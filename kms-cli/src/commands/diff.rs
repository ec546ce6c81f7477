//! `kms diff`.

use kms_core::{KeyName, KeyPrefix};
use serde_json::json;

use crate::cli::DiffArgs;
use crate::context::Ctx;
use crate::diff::diff;
use crate::exit::{CliResult, Exit, Failure};
use crate::output::print_json;

/// Compares two stores under a prefix: names only in A, only in B, equal, different. Values
/// are compared in constant time and never printed.
///
/// # Errors
///
/// Opening or listing either store; exit 9 if some values could not be read; with
/// `--exit-code`, exit 1 when the stores differ.
pub async fn run(ctx: &Ctx, args: DiffArgs) -> CliResult {
    let prefix = KeyPrefix::new(&args.prefix)?;
    let a = ctx.target.open_spec(&args.a).await?;
    let b = ctx.target.open_spec(&args.b).await?;
    let report = diff(a.as_ref(), b.as_ref(), &prefix, 8).await?;
    let names = |v: &[KeyName]| v.iter().map(|k| k.as_str().to_owned()).collect::<Vec<_>>();
    if ctx.json {
        print_json(&json!({
            "only_in_a": names(&report.only_in_a),
            "only_in_b": names(&report.only_in_b),
            "equal": names(&report.equal),
            "different": names(&report.different),
            "failed": report.failed.iter().map(|(k, e)| json!({"key": k.as_str(), "error": e.to_string()})).collect::<Vec<_>>(),
        }));
    } else {
        for (label, keys) in [
            ("only in A", &report.only_in_a),
            ("only in B", &report.only_in_b),
            ("different", &report.different),
            ("equal    ", &report.equal),
        ] {
            for k in keys {
                println!("{label}  {k}");
            }
        }
        for (k, e) in &report.failed {
            println!("failed     {k}: {e}");
        }
        println!(
            "summary: {} only in A, {} only in B, {} different, {} equal{}",
            report.only_in_a.len(),
            report.only_in_b.len(),
            report.different.len(),
            report.equal.len(),
            if report.failed.is_empty() {
                String::new()
            } else {
                format!(", {} unreadable", report.failed.len())
            }
        );
    }
    if !report.failed.is_empty() {
        return Err(Failure::new(
            Exit::Partial,
            format!("{} key(s) could not be compared", report.failed.len()),
        ));
    }
    if args.exit_code && !report.is_same() {
        return Err(Failure::new(Exit::Other, "the stores differ"));
    }
    Ok(())
}
