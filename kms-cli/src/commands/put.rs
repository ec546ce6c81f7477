//! `kms put`.

use kms_core::{Error, ErrorKind, KeyName, KeyStore, KeyStoreExt, SecretMeta, SecretValue};
use serde_json::json;
use zeroize::Zeroize;

use crate::cli::PutArgs;
use crate::context::Ctx;
use crate::exit::CliResult;
use crate::field::{self, Expect};
use crate::input::read_value;
use crate::open::FieldStore;
use crate::output::{meta_json, outln};

/// Writes a key from stdin, `--file` or (with a warning) `--value`; prints the new version.
///
/// With `--field NAME` only that field of a JSON-object secret is set (as text) and the
/// others are kept; the secret must exist unless `--create` (or `--cas 0`) is given: on Vault by its own field selector (a check-and-set against the version
/// it reads, in Vault's shape, so `bao kv get -field=NAME` still reads it); elsewhere by a
/// read-modify-write of the whole value (see [`crate::field`]).
///
/// # Errors
///
/// With `--cas VERSION` the write goes through [`KeyStore::store_if_version`]:
/// [`ErrorKind::Conflict`] (exit 6) when the current version is not VERSION (`0`: when the key
/// exists), [`ErrorKind::Unsupported`] (exit 8) from stores without an atomic check-and-set
/// (the keyrings, Vault KV v1); a VERSION that is not of the store's form is a usage error
/// (exit 2) that does not repeat it. `--field` on a missing key without `--create`: not
/// found (exit 3). Otherwise what the store returns (an empty or oversized value: exit 7).
pub async fn run(ctx: &Ctx, mut args: PutArgs) -> CliResult {
    let key = KeyName::new(&args.key)?;
    if let Some(v) = args.cas.as_deref() {
        crate::version_arg::check("--cas", v, ctx.target.backend(), true)?;
    }
    // Opened before the value is asked for: a store that cannot be opened fails first.
    let dest = match &args.field {
        None => FieldStore::Native(ctx.target.open().await?),
        Some(name) => ctx.target.open_field(name).await?,
    };
    // `--cas 0`: only if the key does not exist (Vault's convention).
    let cas = args
        .cas
        .as_deref()
        .map(|v| if v == "0" { None } else { Some(v) });
    // Setting a field of a secret that does not exist would create a one-field secret, most
    // likely under a mistyped name: only with --create (or --cas 0, "only if absent").
    if let (Some(name), false, FieldStore::Native(store) | FieldStore::Whole(store)) =
        (&args.field, args.create || cas == Some(None), &dest)
        && store.get_opt(&key).await?.is_none()
    {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "{key} does not exist; --field sets a field of an existing secret (add --create to create it as {{\"{}\": …}})",
                name.escape_debug()
            ),
        )
        .into());
    }
    let value = match args.value.take() {
        Some(mut text) => {
            ctx.warn(
                "--value puts the secret in argv, visible to every user in `ps` and kept in shell history; prefer stdin or --file",
            );
            let value = SecretValue::copy_from_slice(text.as_bytes());
            text.zeroize();
            value
        }
        None => read_value(args.file.as_deref(), key.as_str())?,
    };
    let meta = match (&dest, &args.field) {
        (FieldStore::Whole(store), Some(name)) => {
            let expect = cas.map_or(Expect::Read, Expect::Version);
            field::write(store.as_ref(), &key, name, &value, expect, false)
                .await?
                .0
        }
        (FieldStore::Native(store) | FieldStore::Whole(store), _) => {
            write(store.as_ref(), &key, value, cas).await?
        }
    };
    if ctx.json {
        let mut out = meta_json(&meta);
        out["key"] = json!(key.as_str());
        if let Some(name) = &args.field {
            out["field"] = json!(name);
        }
        return ctx.print_json(out);
    }
    let what = match &args.field {
        Some(name) => format!("field {name} of {key}"),
        None => key.to_string(),
    };
    match meta.version.as_deref() {
        Some(v) => outln!("stored {what} (version {v})"),
        None => outln!("stored {what}"),
    }
}

/// `store`, or `store_if_version` with `--cas`.
async fn write(
    store: &dyn KeyStore,
    key: &KeyName,
    value: SecretValue,
    cas: Option<Option<&str>>,
) -> kms_core::Result<SecretMeta> {
    match cas {
        Some(expected) => store.store_if_version(key, value, expected).await,
        None => store.store(key, value).await,
    }
}
