//! Printing results: JSON for scripts, aligned text for people, files for secrets.
//!
//! Every byte the command prints goes through here, never through `print!`/`println!`
//! (which panic when the reader has gone: `kms ls | head -1`). A write to stdout that fails
//! because its reader closed the pipe ends the command with [`Exit::BrokenPipe`] and no
//! message; any other failed stdout write is exit 1. Writes to stderr are best-effort: a
//! diagnostic that cannot be shown must not change what the command does.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::SystemTime;

use kms_core::SecretMeta;
use serde_json::{Value, json};

use crate::exit::{CliResult, Exit, Failure};

/// Writes `text` to stdout, as is, and flushes it.
///
/// # Errors
///
/// [`Exit::BrokenPipe`] when stdout's reader has gone (nothing is printed about it), exit 1
/// for another write error.
pub fn stdout(text: &str) -> CliResult {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| stdout_failure(&e))
}

/// The failure of a write to stdout.
pub fn stdout_failure(err: &std::io::Error) -> Failure {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        Failure::new(Exit::BrokenPipe, "stdout was closed").reported()
    } else {
        Failure::new(Exit::Other, format!("writing to stdout: {err}"))
    }
}

/// Writes one line (`args` and a newline) to stdout; see [`stdout`].
///
/// # Errors
///
/// As [`stdout`].
pub fn line(args: fmt::Arguments<'_>) -> CliResult {
    let mut text = args.to_string();
    text.push('\n');
    stdout(&text)
}

/// `outln!("…", args)`: one line on stdout through [`line`], returning its [`CliResult`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

/// Writes one line to stderr, ignoring failure (see the module docs).
pub fn eline(args: fmt::Arguments<'_>) {
    let mut text = args.to_string();
    text.push('\n');
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

/// Writes `text` to stderr without a newline (a prompt), ignoring failure.
pub fn eprompt(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

/// Prints `value` as one line of JSON on stdout.
///
/// # Errors
///
/// As [`stdout`].
pub fn print_json(value: &Value) -> CliResult {
    line(format_args!("{value}"))
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
///
/// # Errors
///
/// As [`stdout`].
pub fn print_pairs(rows: &[(&str, String)]) -> CliResult {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut text = String::new();
    for (k, v) in rows {
        text.push_str(&format!("{k:<width$}  {v}\n"));
    }
    stdout(&text)
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
