#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod agent;
pub mod config;
pub mod health;
pub mod live;
pub mod metrics;
pub mod native;
pub mod prefetch;
pub mod respond;
mod rfc3339;
pub mod route;
pub mod secrets_manager;
pub mod server;
pub mod service;
pub mod signals;
pub mod snapshot;
pub mod store_slot;
pub mod token;

pub use agent::Agent;
pub use config::AgentConfig;
pub use signals::Signals;
