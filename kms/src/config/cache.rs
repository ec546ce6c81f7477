//! `cache`: the moka-based read cache (`kms_cache::CacheLayer`).

use std::time::Duration;

use serde::Deserialize;

use crate::{duration, scalar};

/// `[stores.NAME.cache]` / `cache.*`: a read cache above the backend. Maps onto
/// `kms_cache::CacheLayer`; unset options keep its defaults (TTL 5 min, jitter 0.1,
/// 10,000 entries, the rest off).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Whether the layer is on (default true once the table exists).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub enabled: Option<bool>,
    /// Time-to-live of an entry, before jitter.
    #[serde(default, deserialize_with = "duration::opt")]
    pub ttl: Option<Duration>,
    /// Downward TTL jitter, a fraction from 0.0 to 0.9.
    #[serde(default, deserialize_with = "scalar::opt")]
    pub jitter: Option<f64>,
    /// Expire an entry not read for this long.
    #[serde(default, deserialize_with = "duration::opt")]
    pub time_to_idle: Option<Duration>,
    /// Bound in entries (exclusive with `max_bytes`).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub max_entries: Option<u64>,
    /// Bound in bytes of names and values (exclusive with `max_entries`).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub max_bytes: Option<u64>,
    /// Refresh-ahead: reload in the background past this fraction of the TTL (0.05–1.0).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub refresh_ahead: Option<f64>,
    /// Stale-if-error: serve an expired value this long after expiry when a reload fails
    /// transiently.
    #[serde(default, deserialize_with = "duration::opt")]
    pub stale_if_error: Option<Duration>,
    /// Stale-while-revalidate: serve the stale value to a `get` whose reload has not answered
    /// within this long (default 100 ms once `stale_if_error` is set, which it needs; `0s`: at
    /// once).
    #[serde(default, deserialize_with = "duration::opt")]
    pub stale_while_revalidate: Option<Duration>,
    /// Negative caching: remember a missing key for this long.
    #[serde(default, deserialize_with = "duration::opt")]
    pub negative_ttl: Option<Duration>,
    /// The longest one load from the store below may run (default 30 s).
    #[serde(default, deserialize_with = "duration::opt")]
    pub load_timeout: Option<Duration>,
    /// Shortest time between two forced refreshes of one key on reports of a refused
    /// credential (default 30 s; more than zero).
    #[serde(default, deserialize_with = "duration::opt")]
    pub rejection_rate_limit: Option<Duration>,
    /// How long a forced refresh keeps reading again while the backend still answers the
    /// refused version (default 90 s; at most 15 minutes; `0s`: one read).
    #[serde(default, deserialize_with = "duration::opt")]
    pub rejection_retry_budget: Option<Duration>,
}

#[cfg(feature = "cache")]
impl CacheConfig {
    /// The layer, validated.
    pub(crate) fn layer(&self, at: &super::at::At) -> kms_core::Result<kms_cache::CacheLayer> {
        use kms_cache::{CacheLayer, Capacity};

        use crate::error::config_error;

        let key = |k: &str| at.key(&format!("cache.{k}"));
        let mut layer = CacheLayer::new();
        if let Some(t) = self.ttl {
            if t.is_zero() {
                return Err(config_error(
                    &key("ttl"),
                    "invalid duration 0s: expected more than zero (turn the cache off with `enabled = false`)",
                ));
            }
            layer = layer.ttl(t);
        }
        if let Some(j) = self.jitter {
            if !(0.0..=0.9).contains(&j) {
                return Err(config_error(
                    &key("jitter"),
                    format_args!("invalid value {j}: expected a fraction from 0.0 to 0.9"),
                ));
            }
            layer = layer.jitter(j);
        }
        if let Some(t) = self.time_to_idle {
            if t.is_zero() {
                return Err(config_error(
                    &key("time_to_idle"),
                    "invalid duration 0s: expected more than zero",
                ));
            }
            layer = layer.time_to_idle(t);
        }
        match (self.max_entries, self.max_bytes) {
            (Some(_), Some(_)) => {
                return Err(config_error(
                    &key("max_bytes"),
                    "give either `max_entries` or `max_bytes`, not both",
                ));
            }
            (Some(0), None) => {
                return Err(config_error(
                    &key("max_entries"),
                    "invalid value 0: expected at least 1",
                ));
            }
            (None, Some(0)) => {
                return Err(config_error(
                    &key("max_bytes"),
                    "invalid value 0: expected at least 1",
                ));
            }
            (Some(n), None) => layer = layer.capacity(Capacity::Entries(n)),
            (None, Some(n)) => layer = layer.capacity(Capacity::Bytes(n)),
            (None, None) => {}
        }
        if let Some(f) = self.refresh_ahead {
            if !(0.05..=1.0).contains(&f) {
                return Err(config_error(
                    &key("refresh_ahead"),
                    format_args!(
                        "invalid value {f}: expected a fraction of the TTL from 0.05 to 1.0"
                    ),
                ));
            }
            layer = layer.refresh_ahead(f);
        }
        if let Some(t) = self.stale_if_error {
            layer = layer.stale_if_error(t);
        }
        if let Some(t) = self.stale_while_revalidate {
            // Without stale-if-error no expired value is kept, so there would be nothing to
            // serve: the option would change nothing.
            if self.stale_if_error.is_none() {
                return Err(config_error(
                    &key("stale_while_revalidate"),
                    "needs `stale_if_error` (how long after expiry a value may still be served)",
                ));
            }
            layer = layer.stale_while_revalidate(t);
        }
        if let Some(t) = self.load_timeout {
            if t.is_zero() {
                return Err(config_error(
                    &key("load_timeout"),
                    "invalid duration 0s: expected more than zero",
                ));
            }
            layer = layer.load_timeout(t);
        }
        if let Some(t) = self.rejection_rate_limit {
            if t.is_zero() {
                return Err(config_error(
                    &key("rejection_rate_limit"),
                    "invalid duration 0s: expected more than zero (a storm of reports would drive backend reads)",
                ));
            }
            layer = layer.rejection_rate_limit(t);
        }
        if let Some(t) = self.rejection_retry_budget {
            if t > kms_cache::MAX_REJECTION_RETRY_BUDGET {
                return Err(config_error(
                    &key("rejection_retry_budget"),
                    format_args!(
                        "invalid duration {t:?}: expected at most 15m (the longest a rotation step runs)"
                    ),
                ));
            }
            layer = layer.rejection_retry_budget(t);
        }
        if let Some(t) = self.negative_ttl {
            if t.is_zero() {
                return Err(config_error(
                    &key("negative_ttl"),
                    "invalid duration 0s: expected more than zero (leave it unset to turn negative caching off)",
                ));
            }
            layer = layer.negative_ttl(t);
        }
        layer
            .validate()
            .map_err(|e| crate::error::while_applying(&at.key("cache"), e))?;
        Ok(layer)
    }
}
