//! Integration tests of kms-agent: every route and status over HTTP, the gate, the listeners,
//! readiness, reload and shutdown, against the real peers (OpenBao, moto) where a backend is
//! needed, and the real binary for signals.

mod common;

mod aws_api;
mod cache_clear;
mod health;
mod keyring;
mod listeners;
mod native;
mod peers;
mod process;
mod security;
mod stress;
