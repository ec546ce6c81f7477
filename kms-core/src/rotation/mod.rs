//! Rotation: replace keys safely, read the overlap, watch for changes, rotate on a schedule.
//!
//! - [`Rotation`]: one key's rotation on any [`KeyStore`](crate::KeyStore): a fresh value
//!   from a [`Generator`] (by default 32 bytes from the OS CSPRNG as base64url text), written
//!   with check-and-set against the version read, so of two concurrent rotations one wins
//!   and the other gets [`ErrorKind::Conflict`](crate::ErrorKind::Conflict); one field of a
//!   JSON-object secret, the others kept; never creates a key.
//! - [`Overlap`]: the current and the previous version in one call, for verifiers and
//!   alternating-users schemes (memory, Vault KV v2, AWS `AWSPREVIOUS`); `Unsupported` on
//!   stores without versions.
//! - [`Watch`]: a [`Stream`](futures::Stream) of changes to a key or a prefix, polling
//!   through the stack it is given (cache included) with jitter.
//! - [`Rotator`]: rotates the keys under a prefix whose current version is older than a
//!   maximum age (90 days by default), with jitter and bounded concurrency, until dropped.
//! - [`RotationObserver`]: how a rotation reports to metrics and audit logs; kms-metrics
//!   implements it, so kms-core does not depend on it.
//!
//! Everything here is built on the [`KeyStore`](crate::KeyStore) methods (`get`,
//! `get_version`, `store_if_version`, `store`, `list`), so every decorator supports it
//! without forwarding anything new; what differs per backend is declared in its
//! [`Capabilities`](crate::Capabilities) (`versions`, `previous_version`).

mod document;
mod generator;
mod observer;
mod overlap;
mod rotate;
mod rotator;
mod watch;

pub use generator::{Encoding, Generator};
pub use observer::{ROTATION_STATUSES, RotationEvent, RotationObserver, RotationOutcome};
pub use overlap::{MAX_SKIPPED_VERSIONS, Overlap};
pub use rotate::{Rotated, Rotation};
pub use rotator::{RotationFailure, RotationReport, Rotator, RotatorHandle};
pub use watch::{Watch, WatchEvent, WatchStream};
