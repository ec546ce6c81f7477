//! What every command is given.

use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};

use crate::exit::CliResult;
use crate::open::Target;
use crate::output::{eline, print_json};
use crate::stop::Stop;

/// The global options, resolved.
#[derive(Clone, Debug, Default)]
pub struct Ctx {
    /// Which store the global options name.
    pub target: Target,
    /// `--json`.
    pub json: bool,
    /// `-v` given this many times.
    pub verbose: u8,
    /// Set on SIGINT, for commands that stop between keys.
    pub stop: Stop,
    /// Warnings held back for the JSON document (with `--json`).
    pub warnings: Warnings,
}

/// Warnings of a `--json` run, printed inside its one JSON document (`"warnings": […]`)
/// rather than as text on stderr.
#[derive(Clone, Debug, Default)]
pub struct Warnings(Arc<Mutex<Vec<String>>>);

impl Warnings {
    /// The warnings so far.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn push(&self, warning: String) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(warning);
    }

    /// Adds the warnings, if any, to `doc` as `"warnings": […]`.
    pub fn attach(&self, doc: &mut Value) {
        let warnings = self.take();
        if !warnings.is_empty()
            && let Some(map) = doc.as_object_mut()
        {
            map.insert("warnings".to_owned(), json!(warnings));
        }
    }
}

impl Ctx {
    /// A warning for the operator: `warning: …` on stderr, or with `--json` a line of the
    /// document's `"warnings"`.
    pub fn warn(&self, message: impl Into<String>) {
        let message = message.into();
        if self.json {
            self.warnings.push(message);
        } else {
            eline(format_args!("warning: {message}"));
        }
    }

    /// Prints the command's JSON result on stdout, with the warnings of the run.
    ///
    /// # Errors
    ///
    /// As [`crate::output::stdout`].
    pub fn print_json(&self, mut doc: Value) -> CliResult {
        self.warnings.attach(&mut doc);
        print_json(&doc)
    }
}
