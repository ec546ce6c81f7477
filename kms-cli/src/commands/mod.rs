//! One module per command.

pub mod copy;
pub mod diff;
pub mod export;
pub mod get;
pub mod health;
pub mod import;
pub mod ls;
pub mod migrate;
pub mod put;
pub mod rm;
pub mod rotate;
pub mod versions;
pub mod watch;
