//! `retry`, `timeout`, `breaker`: kms-core's resilience layers ([`kms_core::RetryLayer`],
//! [`kms_core::TimeoutLayer`], [`kms_core::CircuitBreakerLayer`]).

use std::time::Duration;

use kms_core::{CircuitBreakerLayer, Operation, Result, RetryLayer, TimeoutLayer};
use serde::Deserialize;

use super::at::At;
use crate::error::config_error;
use crate::{duration, scalar};

/// `[stores.NAME.retry]` / `retry.*`: retries of transient failures. Maps onto
/// [`RetryLayer`]; unset options keep its reference settings (3 retries, 100 ms base,
/// 50 ms jitter, 5 s cap, 10 s budget).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Whether the layer is on (default true once the table exists).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub enabled: Option<bool>,
    /// Retries after the first attempt (0 disables retrying).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub max_retries: Option<u32>,
    /// The first backoff delay; each later one doubles.
    #[serde(default, deserialize_with = "duration::opt")]
    pub base_delay: Option<Duration>,
    /// The largest random delay added to each backoff.
    #[serde(default, deserialize_with = "duration::opt")]
    pub jitter: Option<Duration>,
    /// The largest single backoff delay.
    #[serde(default, deserialize_with = "duration::opt")]
    pub max_delay: Option<Duration>,
    /// The time budget of one call's retries, or `"off"`.
    #[serde(default, deserialize_with = "duration::opt_or_off")]
    pub budget: Option<Option<Duration>>,
    /// Whether `store` is retried.
    #[serde(default, deserialize_with = "scalar::opt")]
    pub retry_store: Option<bool>,
    /// Whether `remove` is retried.
    #[serde(default, deserialize_with = "scalar::opt")]
    pub retry_remove: Option<bool>,
}

impl RetryConfig {
    /// The layer, validated.
    pub(crate) fn layer(&self, at: &At) -> Result<RetryLayer> {
        let mut layer = RetryLayer::new();
        if let Some(n) = self.max_retries {
            layer = layer.max_retries(n);
        }
        if let Some(d) = self.base_delay {
            layer = layer.base_delay(d);
        }
        if let Some(d) = self.jitter {
            layer = layer.jitter(d);
        }
        if let Some(d) = self.max_delay {
            if let Some(base) = self.base_delay
                && d < base
            {
                return Err(config_error(
                    &at.key("retry.max_delay"),
                    "must not be shorter than `retry.base_delay`",
                ));
            }
            layer = layer.max_delay(d);
        }
        if let Some(b) = self.budget {
            layer = layer.budget(b);
        }
        if let Some(on) = self.retry_store {
            layer = layer.retry_store(on);
        }
        if let Some(on) = self.retry_remove {
            layer = layer.retry_remove(on);
        }
        layer
            .validate()
            .map_err(|e| crate::error::while_applying(&at.key("retry"), e))?;
        Ok(layer)
    }
}

/// `[stores.NAME.timeout]` / `timeout.*`: a deadline per attempt. Maps onto
/// [`TimeoutLayer`] (reference setting: 5 s for every operation).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutConfig {
    /// Whether the layer is on (default true once the table exists).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub enabled: Option<bool>,
    /// The deadline of every operation not set below.
    #[serde(default, deserialize_with = "duration::opt")]
    pub all: Option<Duration>,
    /// The deadline of `get` and `get_version`.
    #[serde(default, deserialize_with = "duration::opt")]
    pub get: Option<Duration>,
    /// The deadline of `store`.
    #[serde(default, deserialize_with = "duration::opt")]
    pub store: Option<Duration>,
    /// The deadline of `remove`.
    #[serde(default, deserialize_with = "duration::opt")]
    pub remove: Option<Duration>,
    /// The deadline of `list`.
    #[serde(default, deserialize_with = "duration::opt")]
    pub list: Option<Duration>,
    /// The deadline of `health`.
    #[serde(default, deserialize_with = "duration::opt")]
    pub health: Option<Duration>,
}

impl TimeoutConfig {
    /// The layer, validated (no zero deadline).
    pub(crate) fn layer(&self, at: &At) -> Result<TimeoutLayer> {
        let check = |name: &str, d: Option<Duration>| -> Result<Option<Duration>> {
            match d {
                Some(d) if d.is_zero() => Err(config_error(
                    &at.key(&format!("timeout.{name}")),
                    "invalid duration 0s: expected more than zero",
                )),
                other => Ok(other),
            }
        };
        let mut layer = match check("all", self.all)? {
            Some(d) => TimeoutLayer::all(d),
            None => TimeoutLayer::new(),
        };
        for (name, op, d) in [
            ("get", Operation::Get, self.get),
            ("store", Operation::Store, self.store),
            ("remove", Operation::Remove, self.remove),
            ("list", Operation::List, self.list),
            ("health", Operation::Health, self.health),
        ] {
            if let Some(d) = check(name, d)? {
                layer = layer.operation(op, d);
            }
        }
        Ok(layer)
    }
}

/// `[stores.NAME.breaker]` / `breaker.*`: the circuit breaker. Maps onto
/// [`CircuitBreakerLayer`] (reference settings: window 20, min 10 calls, ratio 0.5, 5 s
/// open, 3 trial calls, 3 successes to close).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Whether the layer is on (default true once the table exists).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub enabled: Option<bool>,
    /// How many of the latest calls the failure ratio is computed over (at least 1).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub window: Option<u32>,
    /// The fewest recorded calls before the circuit may open.
    #[serde(default, deserialize_with = "scalar::opt")]
    pub min_calls: Option<u32>,
    /// The failure share (0.0–1.0) at or above which the circuit opens.
    #[serde(default, deserialize_with = "scalar::opt")]
    pub failure_ratio: Option<f64>,
    /// How long the circuit stays open before trial calls.
    #[serde(default, deserialize_with = "duration::opt")]
    pub open_delay: Option<Duration>,
    /// Trial calls allowed at once while half-open (at least 1).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub half_open_calls: Option<u32>,
    /// Consecutive trial successes that close the circuit (at least 1).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub success_threshold: Option<u32>,
    /// How long a half-open trial may take before it counts as a failure (default 10 s).
    #[serde(default, deserialize_with = "duration::opt")]
    pub trial_timeout: Option<Duration>,
}

impl BreakerConfig {
    /// The layer, validated.
    pub(crate) fn layer(&self, at: &At) -> Result<CircuitBreakerLayer> {
        let at_least_one = |name: &str, v: Option<u32>| -> Result<Option<u32>> {
            match v {
                Some(0) => Err(config_error(
                    &at.key(&format!("breaker.{name}")),
                    "invalid value 0: expected at least 1",
                )),
                other => Ok(other),
            }
        };
        let mut layer = CircuitBreakerLayer::new();
        if let Some(n) = at_least_one("window", self.window)? {
            layer = layer.window(n);
        }
        if let Some(n) = self.min_calls {
            layer = layer.min_calls(n);
        }
        if let Some(r) = self.failure_ratio {
            if !(0.0..=1.0).contains(&r) || r == 0.0 {
                return Err(config_error(
                    &at.key("breaker.failure_ratio"),
                    format_args!(
                        "invalid value {r}: expected a fraction above 0.0 and at most 1.0"
                    ),
                ));
            }
            layer = layer.failure_ratio(r);
        }
        if let Some(d) = self.open_delay {
            if d.is_zero() {
                return Err(config_error(
                    &at.key("breaker.open_delay"),
                    "invalid duration 0s: expected more than zero",
                ));
            }
            layer = layer.open_delay(d);
        }
        if let Some(n) = at_least_one("half_open_calls", self.half_open_calls)? {
            layer = layer.half_open_calls(n);
        }
        if let Some(n) = at_least_one("success_threshold", self.success_threshold)? {
            layer = layer.success_threshold(n);
        }
        if let Some(d) = self.trial_timeout {
            if d.is_zero() {
                return Err(config_error(
                    &at.key("breaker.trial_timeout"),
                    "invalid duration 0s: expected more than zero",
                ));
            }
            layer = layer.trial_timeout(d);
        }
        layer
            .validate()
            .map_err(|e| crate::error::while_applying(&at.key("breaker"), e))?;
        Ok(layer)
    }
}
