//! Exit codes: one per error kind, so scripts can tell "not there" from "not allowed" from
//! "try again later". The table in the README is this module's documentation.

use std::fmt;

use kms_core::{Error, ErrorKind};
use serde_json::{Value, json};

/// Why `kms` exits non-zero. [`code`](Exit::code) is the process exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 1: anything not listed below (a backend error, data the tool cannot read).
    Other,
    /// 2: bad arguments or configuration (clap's own usage errors exit 2 too).
    Usage,
    /// 3: the key (or version) does not exist.
    NotFound,
    /// 4: the credentials were refused or lack permission.
    Denied,
    /// 5: the store is unreachable, timed out, rate-limited or behind an open circuit.
    Unavailable,
    /// 6: the key changed or exists with a different value.
    Conflict,
    /// 7: the input was refused: a bad key name, an empty or oversized value.
    InvalidInput,
    /// 8: the store cannot do this (no listing, no versions, no check-and-set).
    Unsupported,
    /// 9: a command over many keys (migrate, import, rm …) finished, but some keys failed.
    Partial,
    /// 130: interrupted by SIGINT (Ctrl-C); the summary says what was done.
    Interrupted,
    /// 141: stdout was closed by its reader (`kms ls | head -1`): the command stops quietly,
    /// with the status a shell reports for a process ended by SIGPIPE, as coreutils do.
    BrokenPipe,
}

impl Exit {
    /// The process exit status.
    pub const fn code(self) -> u8 {
        match self {
            Self::Other => 1,
            Self::Usage => 2,
            Self::NotFound => 3,
            Self::Denied => 4,
            Self::Unavailable => 5,
            Self::Conflict => 6,
            Self::InvalidInput => 7,
            Self::Unsupported => 8,
            Self::Partial => 9,
            Self::Interrupted => 130,
            Self::BrokenPipe => 141,
        }
    }

    /// A stable label for `--json` output.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Other => "other",
            Self::Usage => "usage",
            Self::NotFound => "not_found",
            Self::Denied => "denied",
            Self::Unavailable => "unavailable",
            Self::Conflict => "conflict",
            Self::InvalidInput => "invalid_input",
            Self::Unsupported => "unsupported",
            Self::Partial => "partial",
            Self::Interrupted => "interrupted",
            Self::BrokenPipe => "broken_pipe",
        }
    }

    /// The exit for an error of `kind`.
    pub const fn for_kind(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::NotFound => Self::NotFound,
            ErrorKind::PermissionDenied | ErrorKind::Unauthenticated => Self::Denied,
            ErrorKind::Unavailable
            | ErrorKind::Timeout
            | ErrorKind::RateLimited
            | ErrorKind::CircuitOpen => Self::Unavailable,
            ErrorKind::Conflict => Self::Conflict,
            ErrorKind::InvalidInput => Self::InvalidInput,
            ErrorKind::Unsupported => Self::Unsupported,
            ErrorKind::Configuration => Self::Usage,
            _ => Self::Other,
        }
    }
}

/// A failed command: the exit status and a message for stderr. Never holds a secret value:
/// messages come from [`kms_core::Error`] (which never carries one) or from this crate.
#[derive(Debug)]
pub struct Failure {
    /// How the process exits.
    pub exit: Exit,
    /// The error kind when the failure came from a store.
    pub kind: Option<ErrorKind>,
    /// What went wrong, for people.
    pub message: String,
    /// The command's result already reports this failure (a `health` report, a `migrate`
    /// summary): with `--json` that result is the run's one document, so nothing more is
    /// printed; without, the message still goes to stderr.
    pub reported: bool,
}

impl Failure {
    /// A failure with an exit and a message.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            kind: None,
            message: message.into(),
            reported: false,
        }
    }

    /// The same failure, marked as already in the command's result (see
    /// [`reported`](Self::reported)).
    #[must_use]
    pub fn reported(mut self) -> Self {
        self.reported = true;
        self
    }

    /// The failure as JSON: `{"exit_code", "exit", "kind", "message"}` (`kind` is the store
    /// error's kind, or `null`).
    pub fn to_json(&self) -> Value {
        json!({
            "exit_code": self.exit.code(),
            "exit": self.exit.as_str(),
            "kind": self.kind.map(|k| k.as_str()),
            "message": self.message,
        })
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }

    /// A local I/O failure (reading an input file, writing an output file): exit 1, or
    /// [`Exit::NotFound`] / [`Exit::Denied`] for a missing or forbidden file.
    pub fn io(what: impl fmt::Display, err: &std::io::Error) -> Self {
        let exit = match err.kind() {
            std::io::ErrorKind::NotFound => Exit::NotFound,
            std::io::ErrorKind::PermissionDenied => Exit::Denied,
            std::io::ErrorKind::AlreadyExists => Exit::Conflict,
            _ => Exit::Other,
        };
        Self::new(exit, format!("{what}: {err}"))
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        Self {
            exit: Exit::for_kind(err.kind()),
            kind: Some(err.kind()),
            message: err.to_string(),
            reported: false,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a command returns.
pub type CliResult<T = ()> = std::result::Result<T, Failure>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_the_documented_code() {
        let cases = [
            (ErrorKind::NotFound, 3),
            (ErrorKind::PermissionDenied, 4),
            (ErrorKind::Unauthenticated, 4),
            (ErrorKind::Unavailable, 5),
            (ErrorKind::Timeout, 5),
            (ErrorKind::RateLimited, 5),
            (ErrorKind::CircuitOpen, 5),
            (ErrorKind::Conflict, 6),
            (ErrorKind::InvalidInput, 7),
            (ErrorKind::Unsupported, 8),
            (ErrorKind::Configuration, 2),
            (ErrorKind::InvalidData, 1),
            (ErrorKind::Backend, 1),
        ];
        for (kind, code) in cases {
            assert_eq!(Exit::for_kind(kind).code(), code, "{kind:?}");
        }
    }

    #[test]
    fn readme_table_lists_every_exit() {
        let readme = include_str!("../README.md");
        for exit in [
            Exit::Other,
            Exit::Usage,
            Exit::NotFound,
            Exit::Denied,
            Exit::Unavailable,
            Exit::Conflict,
            Exit::InvalidInput,
            Exit::Unsupported,
            Exit::Partial,
            Exit::Interrupted,
            Exit::BrokenPipe,
        ] {
            let row = format!("| {} | `{}` |", exit.code(), exit.as_str());
            assert!(readme.contains(&row), "README lacks the row {row}");
        }
    }
}
