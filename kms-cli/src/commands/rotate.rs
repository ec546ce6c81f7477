//! `kms rotate`.

use kms_core::rotation::{self, Generator, Rotation};
use kms_core::{Error, ErrorKind, KeyName};
use serde_json::json;

use crate::cli::{Encoding, RotateArgs};
use crate::context::Ctx;
use crate::exit::CliResult;
use crate::input::read_value;
use crate::open::FieldStore;
use crate::output::outln;

/// Replaces an existing key's value with [`kms_core::rotation::Rotation`]: `--bytes N`
/// (default 32) fresh bytes from the OS CSPRNG written as `--encoding` says (base64url
/// without padding by default: text every reader decodes), or stdin's bytes (`--stdin`,
/// read after the key, so a missing key fails before anything is typed).
/// The write is a check-and-set against the version read (Vault KV v2, AWS Secrets Manager,
/// memory), so of two concurrent rotations one wins and the other exits 6 having written
/// nothing. Prints the old and new version ids, never a value.
///
/// With `--field NAME` only that field of a JSON-object secret is replaced (it must exist;
/// the other fields are kept). On Vault the store's own field selector does it, in Vault's
/// shape (`bao kv get -field=NAME` still reads it). Without `--field`, a value that is a
/// JSON object is refused (exit 7) unless `--whole` says to replace it all.
///
/// # Errors
///
/// Not found (exit 3) if the key does not exist: rotate replaces, it never creates (use
/// `put`); a conflict (exit 6) if the key changed between the read and the write; a
/// missing field or a value that is not a JSON object with `--field` (exit 1); what the store
/// returns.
pub async fn run(ctx: &Ctx, args: RotateArgs) -> CliResult {
    let key = KeyName::new(&args.key)?;
    let dest = match &args.field {
        None => FieldStore::Native(ctx.target.open().await?),
        Some(name) => ctx.target.open_field(name).await?,
    };
    let generator = if args.stdin {
        // Read when the rotation asks for the value: after the key was read, so a missing
        // key fails before anything is typed.
        let name = key.to_string();
        Generator::from_fn(move || {
            read_value(None, &name)
                .map_err(|f| Error::new(f.kind.unwrap_or(ErrorKind::InvalidInput), f.message))
        })
    } else {
        Generator::random(
            args.bytes as usize,
            encoding(args.encoding.unwrap_or_default()),
        )
    };
    let mut rotation = Rotation::new()
        .generator(generator)
        .replace_document(args.whole);
    let store = match (&dest, &args.field) {
        // The store selects the field itself: its whole value is the field.
        (FieldStore::Native(store), _) => store,
        (FieldStore::Whole(store), Some(name)) => {
            rotation = rotation.field(name.as_str());
            store
        }
        (FieldStore::Whole(store), None) => store,
    };
    let done = rotation
        .run(store.as_ref(), &key)
        .await
        .map_err(|e| explain(e, &args))?;
    let old_version = done.previous.version.as_deref();
    let new_version = done.current.version.as_deref();
    if ctx.json {
        let mut out = json!({
            "key": key.as_str(),
            "old_version": old_version,
            "new_version": new_version,
            "checked": done.checked,
        });
        if let Some(name) = &args.field {
            out["field"] = json!(name);
        }
        return ctx.print_json(out);
    }
    let what = match &args.field {
        Some(name) => format!("field {name} of {key}"),
        None => key.to_string(),
    };
    outln!(
        "rotated {what}: version {} -> {}",
        old_version.unwrap_or("(none: the store keeps no version ids)"),
        new_version.unwrap_or("(none)")
    )
}

/// The library's encoding for the command line's.
fn encoding(e: Encoding) -> rotation::Encoding {
    match e {
        Encoding::Base64url => rotation::Encoding::Base64Url,
        Encoding::Base64 => rotation::Encoding::Base64,
        Encoding::Hex => rotation::Encoding::Hex,
        Encoding::Raw => rotation::Encoding::Raw,
    }
}

/// The error with the command line's words for what to do next.
fn explain(e: Error, args: &RotateArgs) -> Error {
    let hint = match e.kind() {
        ErrorKind::NotFound => "rotate replaces a key, `kms put` creates one",
        ErrorKind::InvalidInput if args.field.is_none() && e.message().contains("JSON object") => {
            "rotate one field with --field NAME, or all of it with --whole"
        }
        _ => return e,
    };
    let mut out = Error::new(e.kind(), format!("{}; {hint}", e.message()));
    if let Some(backend) = e.backend() {
        out = out.with_backend(backend);
    }
    out
}
