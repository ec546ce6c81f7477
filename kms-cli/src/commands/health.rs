//! `kms health`.

use kms_core::KeyStore;
use serde_json::json;

use crate::context::Ctx;
use crate::exit::{CliResult, Failure};
use crate::output::print_json;

/// Opens the store and calls its `health` probe: exit 0 when up, else the error's exit (5
/// unreachable, 4 denied …). With `--json` a report `{store, backend, healthy, error}` is
/// printed on stdout either way.
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
        Err(e) => (None, None, Err(e)),
    };
    if ctx.json {
        let error = result.as_ref().err().map(|e| {
            json!({ "kind": e.kind.map(|k| k.as_str()), "exit_code": e.exit.code(), "message": e.message })
        });
        print_json(
            &json!({ "store": name, "backend": backend, "healthy": result.is_ok(), "error": error }),
        );
    } else if result.is_ok() {
        println!("up: {}", name.as_deref().unwrap_or("-"));
    }
    result
}
