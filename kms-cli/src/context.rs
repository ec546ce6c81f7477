//! What every command is given.

use crate::open::Target;
use crate::stop::Stop;

/// The global options, resolved.
#[derive(Clone, Debug, Default)]
pub struct Ctx {
    /// Which store the global options name.
    pub target: Target,
    /// `--json`.
    pub json: bool,
    /// Set on SIGINT, for commands that stop between keys.
    pub stop: Stop,
}
