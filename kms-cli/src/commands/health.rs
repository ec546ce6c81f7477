//! `kms health`.

use kms_core::KeyStore;
use serde_json::json;

use crate::context::Ctx;
use crate::exit::{CliResult, Failure};
use crate::output::outln;

/// Opens the store and calls its `health` probe: exit 0 when up, else the error's exit (5
/// unreachable, 4 denied …). With `--json` the report `{store, backend, healthy, error}` is
/// the run's one document, on stdout either way: `store` is the opened store's name (`null`
/// when it could not be opened), `backend` the one its configuration names.
///
/// # Errors
///
/// The store cannot be opened, or its probe fails.
pub async fn run(ctx: &Ctx) -> CliResult {
    let (name, backend, result) = match ctx.target.open().await {
        Ok(store) => {
            let result = store.health().await.map_err(Failure::from);
            (Some(store.to_string()), Some(store.backend()), result)
        }
        Err(e) => (None, ctx.target.backend(), Err(e)),
    };
    if ctx.json {
        let error = result.as_ref().err().map(Failure::to_json);
        ctx.print_json(
            json!({ "store": name, "backend": backend, "healthy": result.is_ok(), "error": error }),
        )?;
        return result.map_err(Failure::reported);
    }
    if result.is_ok() {
        outln!("up: {}", name.as_deref().unwrap_or("-"))?;
    }
    result
}
