//! The Linux kernel keyring (keyutils) as a `keyring_core` credential store, with an explicit
//! scope (session or persistent keyring), typed quota errors and a search by service.
//!
//! An entry `(service, name)` is a `user` key whose description is `keyring:<name>@<service>`
//! (the format of `linux-keyutils-keyring-store`, so entries written by the `keyring` crate
//! and by `keyctl` are shared). See [`KeyutilsScope`](crate::KeyutilsScope) for where keys are written and how long
//! they live; reads search the session keyring and every keyring linked into it.

mod key_error;
mod owner;
mod store;
mod walk;

pub(crate) use key_error::ForeignKey;
pub(crate) use store::KeyutilsStore;
pub use store::description;
