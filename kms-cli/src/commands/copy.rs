//! `kms copy`.

use kms_core::{Error, ErrorKind, KeyName, KeyStore, KeyStoreExt};
use serde_json::json;

use crate::cli::CopyArgs;
use crate::compare::values_equal;
use crate::context::Ctx;
use crate::exit::CliResult;
use crate::output::{meta_json, outln};

/// Copies SRC_KEY to DST_KEY (in the same store, or `--to` another): one read, one read of
/// the destination, at most one write. An equal destination value is left alone; a different
/// one is a conflict unless `--overwrite`.
///
/// # Errors
///
/// Not found (exit 3) for a missing source; conflict (exit 6); what the stores return.
pub async fn run(ctx: &Ctx, args: CopyArgs) -> CliResult {
    let src_key = KeyName::new(&args.src_key)?;
    let dst_key = KeyName::new(&args.dst_key)?;
    let src = ctx.target.open().await?;
    let dst = match &args.to {
        Some(spec) => ctx.target.open_spec(spec).await?,
        None => src.clone(),
    };
    let secret = src.get(&src_key).await?;
    let status = match dst.get_opt(&dst_key).await? {
        Some(existing) if values_equal(&existing.value, &secret.value) => "unchanged",
        Some(_) if !args.overwrite => {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("{dst_key} exists with a different value; --overwrite replaces it; nothing was written"),
            )
            .into());
        }
        _ => "copied",
    };
    let meta = if status == "copied" {
        Some(dst.store(&dst_key, secret.value).await?)
    } else {
        None
    };
    if ctx.json {
        let mut out = meta.as_ref().map(meta_json).unwrap_or_else(|| json!({}));
        out["from"] = json!(src_key.as_str());
        out["to"] = json!(dst_key.as_str());
        out["status"] = json!(status);
        ctx.print_json(out)
    } else if status == "copied" {
        let version = meta.as_ref().and_then(|m| m.version.as_deref());
        match version {
            Some(v) => outln!("copied {src_key} -> {dst_key} (version {v})"),
            None => outln!("copied {src_key} -> {dst_key}"),
        }
    } else {
        outln!("{dst_key} already holds the same value; nothing written")
    }
}
