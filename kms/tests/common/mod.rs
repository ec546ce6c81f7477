//! Shared helpers: the layer options every backend test configures, as URI query keys and as
//! TOML tables (the same options, so both forms are exercised on every backend).
#![allow(dead_code)]

/// The layer options as URI query pairs (metrics under `prefix`).
pub fn layer_query(prefix: &str) -> String {
    format!(
        "validate.max_value_len=65536&cache.ttl=1m&cache.jitter=0.1&cache.max_entries=1000\
         &cache.negative_ttl=1s&breaker.window=20&breaker.min_calls=10&breaker.failure_ratio=0.5\
         &retry.max_retries=2&retry.base_delay=10ms&retry.budget=2s&timeout.all=10s\
         &timeout.list=20s&metrics.prefix={prefix}&metrics.health_probe=off"
    )
}

/// The same layers as TOML tables of `[stores.<name>]`.
pub fn layer_toml(name: &str, prefix: &str) -> String {
    format!(
        r#"
[stores.{name}.validate]
max_value_len = 65536

[stores.{name}.cache]
ttl = "1m"
jitter = 0.1
max_entries = 1000
negative_ttl = "1s"

[stores.{name}.breaker]
window = 20
min_calls = 10
failure_ratio = 0.5

[stores.{name}.retry]
max_retries = 2
base_delay = "10ms"
budget = "2s"

[stores.{name}.timeout]
all = "10s"
list = "20s"

[stores.{name}.metrics]
prefix = "{prefix}"
health_probe = "off"
"#
    )
}

/// The stack those layers build over `backend` (its `Display`).
pub fn layered(backend: &str) -> String {
    format!("Instrumented(Validate(Cache(CircuitBreaker(Retry(Monitored(Timeout({backend})))))))")
}

/// A name unique to this process and call.
#[allow(unused_imports)]
pub use kms_core::conformance::unique_name as unique;

pub mod fake_vault;
pub mod http;

/// Marks the options a test observes the effect of. The docs-drift test
/// (`options_reference.rs`) reads these marks from the test sources: every documented option
/// must be observed by some test, so an option that parses but is never applied fails it.
/// Expands to nothing.
#[macro_export]
macro_rules! observes {
    ($($key:literal),+ $(,)?) => {};
}
