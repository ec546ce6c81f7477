//! Printing results: JSON for scripts, aligned text for people, files for secrets.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::SystemTime;

use kms_core::SecretMeta;
use serde_json::{Value, json};

use crate::exit::{CliResult, Failure};

/// Prints `value` as one line of JSON on stdout.
pub fn print_json(value: &Value) {
    println!("{value}");
}

/// An RFC 3339 UTC time (`2026-11-29T18:00:00Z`), or `-`.
pub fn time(at: Option<SystemTime>) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |t| humantime::format_rfc3339_seconds(t).to_string(),
    )
}

/// The metadata as JSON fields (`null` where the backend does not tell).
pub fn meta_json(meta: &SecretMeta) -> Value {
    json!({
        "version": meta.version.as_deref(),
        "created_at": meta.created_at.map(|t| humantime::format_rfc3339_seconds(t).to_string()),
        "updated_at": meta.updated_at.map(|t| humantime::format_rfc3339_seconds(t).to_string()),
    })
}

/// Prints `rows` as two aligned columns.
pub fn print_pairs(rows: &[(&str, String)]) {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        println!("{k:<width$}  {v}");
    }
}

/// Creates `path` for secret bytes: a new file (an existing one is never replaced) with mode
/// 0600 from the start, so there is no moment where others can read it.
///
/// # Errors
///
/// Exit 6 (conflict) if the file exists, else the I/O error's exit.
pub fn create_private(path: &Path) -> CliResult<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Failure::io(format_args!("{}", path.display()), &e))
}

/// Writes `bytes` to the new private file `path` (see [`create_private`]), removing it again
/// if the write fails half-way.
///
/// # Errors
///
/// As [`create_private`], and a failed write.
pub fn write_private(path: &Path, bytes: &[u8]) -> CliResult<()> {
    let mut file = create_private(path)?;
    if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(Failure::io(format_args!("{}", path.display()), &e));
    }
    Ok(())
}
