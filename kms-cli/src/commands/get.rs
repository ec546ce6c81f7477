//! `kms get`.

use base64::Engine as _;
use kms_core::{KeyName, KeyStore, StoredSecret};
use serde_json::json;

use crate::cli::GetArgs;
use crate::context::Ctx;
use crate::exit::CliResult;
use crate::field;
use crate::open::FieldStore;
use crate::output::{meta_json, print_pairs, time, write_private};

/// Prints a key's metadata; its value only with `--reveal`; writes it to `--output`. With
/// `--field NAME` the value is that field of a JSON-object secret (Vault's own field
/// selector on Vault, [`kms_core::json_field`] on the whole value elsewhere).
///
/// # Errors
///
/// What the store returns (not found: exit 3); a value that is not a JSON object or has no
/// such field (exit 1); an output file that exists (exit 6).
pub async fn run(ctx: &Ctx, args: GetArgs) -> CliResult {
    let key = KeyName::new(&args.key)?;
    let version = args.at_version.as_deref();
    if let Some(v) = version {
        crate::version_arg::check("--version", v, ctx.target.backend(), false)?;
    }
    let secret = match &args.field {
        None => read(ctx.target.open().await?.as_ref(), &key, version).await?,
        Some(name) => match ctx.target.open_field(name).await? {
            FieldStore::Native(store) => read(store.as_ref(), &key, version).await?,
            FieldStore::Whole(store) => {
                let mut secret = read(store.as_ref(), &key, version).await?;
                secret.value = field::read(&key, &secret.value, name)?;
                secret
            }
        },
    };
    if let Some(path) = &args.output {
        write_private(path, secret.value.expose_secret())?;
    }
    let text = secret.value.expose_str().ok();
    if ctx.json {
        let mut out = meta_json(&secret.meta);
        out["key"] = json!(key.as_str());
        if let Some(name) = &args.field {
            out["field"] = json!(name);
        }
        out["length"] = json!(secret.value.len());
        if let Some(path) = &args.output {
            out["output"] = json!(path.display().to_string());
        }
        if args.reveal {
            match text {
                Some(t) => out["value"] = json!(t),
                None => {
                    out["value_base64"] = json!(
                        base64::engine::general_purpose::STANDARD
                            .encode(secret.value.expose_secret())
                    );
                }
            }
        }
        return ctx.print_json(out);
    }
    let mut rows = vec![("key", key.to_string())];
    if let Some(name) = &args.field {
        rows.push(("field", name.clone()));
    }
    rows.extend([
        (
            "version",
            secret.meta.version.as_deref().unwrap_or("-").to_owned(),
        ),
        ("created", time(secret.meta.created_at)),
        ("updated", time(secret.meta.updated_at)),
        ("length", format!("{} bytes", secret.value.len())),
    ]);
    if let Some(path) = &args.output {
        rows.push(("written", format!("{} (mode 0600)", path.display())));
    }
    if args.reveal {
        match text {
            Some(t) => rows.push(("value", t.to_owned())),
            None => rows.push((
                "value (base64)",
                base64::engine::general_purpose::STANDARD.encode(secret.value.expose_secret()),
            )),
        }
    }
    print_pairs(&rows)
}

/// The current version, or `version`.
async fn read(
    store: &dyn KeyStore,
    key: &KeyName,
    version: Option<&str>,
) -> kms_core::Result<StoredSecret> {
    match version {
        Some(v) => store.get_version(key, v).await,
        None => store.get(key).await,
    }
}
