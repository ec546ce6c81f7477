//! `kms rotate`.

use base64::Engine as _;
use kms_core::{Error, ErrorKind, KeyName, KeyStore, SecretValue};
use serde_json::json;
use zeroize::Zeroizing;

use crate::cli::{Encoding, RotateArgs};
use crate::context::Ctx;
use crate::exit::CliResult;
use crate::field::{self, Expect};
use crate::input::read_value;
use crate::open::FieldStore;
use crate::output::outln;

/// Replaces an existing key's value with `--bytes N` fresh bytes from the OS CSPRNG
/// (`getrandom`, i.e. `getrandom(2)` on Linux), encoded as `--encoding` says, or with stdin's
/// bytes (`--stdin`). Prints the old and new version ids, never a value.
///
/// With `--field NAME` only that field of a JSON-object secret is replaced (it must exist;
/// the other fields are kept, as `put --field` keeps them), and fresh bytes are hex unless
/// `--encoding` says otherwise: a field holds text.
///
/// # Errors
///
/// Not found (exit 3) if the key does not exist: rotate replaces, it never creates (use
/// `put`); a missing field (exit 1); what `store` returns.
pub async fn run(ctx: &Ctx, args: RotateArgs) -> CliResult {
    let key = KeyName::new(&args.key)?;
    let dest = match &args.field {
        None => FieldStore::Native(ctx.target.open().await?),
        Some(name) => ctx.target.open_field(name).await?,
    };
    let not_found = |e: Error| {
        if e.is_not_found() {
            Error::new(
                ErrorKind::NotFound,
                format!("{key} does not exist; rotate replaces a key, `kms put` creates one"),
            )
        } else {
            e
        }
    };
    let new_value = || -> CliResult<SecretValue> {
        if args.stdin {
            return read_value(None, key.as_str());
        }
        let default = if args.field.is_some() {
            Encoding::Hex
        } else {
            Encoding::Raw
        };
        Ok(random_value(
            args.bytes as usize,
            args.encoding.unwrap_or(default),
        )?)
    };
    let (old_version, meta) = match (&dest, &args.field) {
        (FieldStore::Whole(store), Some(name)) => {
            let value = new_value()?;
            let (meta, before) =
                field::write(store.as_ref(), &key, name, &value, Expect::Read, true)
                    .await
                    .map_err(not_found)?;
            (before.and_then(|m| m.version), meta)
        }
        (FieldStore::Native(store) | FieldStore::Whole(store), _) => {
            let old = store.get(&key).await.map_err(not_found)?;
            let meta = store.store(&key, new_value()?).await?;
            (old.meta.version, meta)
        }
    };
    let old_version = old_version.as_deref();
    let new_version = meta.version.as_deref();
    if ctx.json {
        let mut out =
            json!({ "key": key.as_str(), "old_version": old_version, "new_version": new_version });
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

/// `len` bytes from the OS CSPRNG, encoded.
///
/// # Errors
///
/// [`ErrorKind::Unavailable`] if the OS has no randomness to give (never on a booted Linux).
pub fn random_value(len: usize, encoding: Encoding) -> Result<SecretValue, Error> {
    let mut raw = Zeroizing::new(vec![0u8; len]);
    getrandom::fill(&mut raw)
        .map_err(|e| Error::new(ErrorKind::Unavailable, format!("OS randomness: {e}")))?;
    let encoded: Zeroizing<Vec<u8>> = match encoding {
        Encoding::Raw => raw,
        Encoding::Hex => {
            let mut out = Zeroizing::new(Vec::with_capacity(len * 2));
            for b in raw.iter() {
                out.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            }
            out
        }
        Encoding::Base64 => {
            let mut text = Zeroizing::new(String::with_capacity(len.div_ceil(3) * 4));
            base64::engine::general_purpose::STANDARD.encode_string(raw.as_slice(), &mut text);
            Zeroizing::new(text.as_bytes().to_vec())
        }
    };
    Ok(SecretValue::new(encoded.to_vec()))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_values_have_the_asked_size_and_differ() {
        let a = random_value(32, Encoding::Raw).unwrap();
        let b = random_value(32, Encoding::Raw).unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        let hex = random_value(16, Encoding::Hex).unwrap();
        assert_eq!(hex.len(), 32);
        assert!(
            hex.expose_str()
                .unwrap()
                .bytes()
                .all(|c| c.is_ascii_hexdigit())
        );
        assert_eq!(random_value(32, Encoding::Base64).unwrap().len(), 44);
    }
}
