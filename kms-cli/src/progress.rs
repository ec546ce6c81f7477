//! Progress of commands over many keys: an indicatif bar on stderr when stderr is a
//! terminal, nothing otherwise (scripts and logs get the summary only). A leaf: it knows keys
//! and whether each failed, not what a command does with them.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kms_core::KeyName;

/// Told about the keys of a run as they finish. Key names may be shown; values never are
/// (the trait never sees one).
pub trait Progress: Send + Sync {
    /// The run starts with `total` keys.
    fn start(&self, total: u64);
    /// One key is done; `failed` when it ended in an error.
    fn advance(&self, key: &KeyName, failed: bool);
    /// The run is over.
    fn finish(&self);
}

/// Shows nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _total: u64) {}
    fn advance(&self, _key: &KeyName, _failed: bool) {}
    fn finish(&self) {}
}

/// An indicatif progress bar on stderr.
#[derive(Debug)]
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar on stderr if stderr is a terminal, else [`NoProgress`].
    pub fn for_stderr(label: &'static str) -> Box<dyn Progress> {
        Self::unless(false, label)
    }

    /// [`for_stderr`](Self::for_stderr), or [`NoProgress`] when `quiet` (`--json`: the run
    /// prints its one document and nothing else).
    pub fn unless(quiet: bool, label: &'static str) -> Box<dyn Progress> {
        if quiet || !std::io::stderr().is_terminal() {
            return Box::new(NoProgress);
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} keys ({per_sec}, eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(label);
        bar.enable_steady_tick(Duration::from_millis(200));
        Box::new(Self(bar))
    }
}

impl Progress for Bar {
    fn start(&self, total: u64) {
        self.0.set_length(total);
    }

    fn advance(&self, _key: &KeyName, failed: bool) {
        if failed {
            self.0.set_message("(some failed)");
        }
        self.0.inc(1);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
