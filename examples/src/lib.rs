//! Shared pieces of the example programs: the HTTP service of `bin/service.rs`, also started by
//! the end-to-end metrics test.

#![deny(missing_docs)]

pub mod otel;
pub mod service;
