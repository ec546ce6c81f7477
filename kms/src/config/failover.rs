//! `failover`: one logical store over this store (the primary) and other stores of the same
//! configuration (its replicas), [`kms_core::FailoverLayer`], and optionally monotonic reads
//! across them ([`kms_core::MonotonicLayer`]).

use std::time::Duration;

use kms_core::{FailoverLayer, MonotonicLayer, Result};
use serde::Deserialize;

use super::at::At;
use crate::error::{config_error, while_applying};
use crate::{duration, scalar};

/// `[stores.NAME.failover]`: reads from this store while it is healthy and from its
/// replicas (other stores of the configuration, in order) while it is not; writes to this
/// store only. Unset options keep [`FailoverLayer`]'s reference settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverConfig {
    /// Whether the layer is on (default true once the table exists).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub enabled: Option<bool>,
    /// The replica stores, by name, in priority order (each a `[stores.X]` of the same
    /// configuration, with its own backend and layers; none may have a `failover` table).
    #[serde(default)]
    pub replicas: Vec<String>,
    /// Unhealthy failures in a row that take a store down (default 3).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub fail_after: Option<u32>,
    /// Successful probes in a row a down store needs before it serves again (default 3).
    #[serde(default, deserialize_with = "scalar::opt")]
    pub fail_back_after: Option<u32>,
    /// How long a down store must go without any failure before it serves again (default
    /// 30 s).
    #[serde(default, deserialize_with = "duration::opt")]
    pub hold_down: Option<Duration>,
    /// How often a down store is probed while calls arrive (default 5 s).
    #[serde(default, deserialize_with = "duration::opt")]
    pub probe_interval: Option<Duration>,
    /// Never return a version older than one already returned, skipping a store that is
    /// behind (default false). Only for stores that share version ids or creation times (AWS
    /// replica Regions); two Vault clusters kept in sync by copying number their versions
    /// independently.
    #[serde(default, deserialize_with = "scalar::opt")]
    pub monotonic: Option<bool>,
}

/// The planned failover: its layer (replicas added when they are opened), the replicas'
/// names, and the monotonic layer sharing its floors.
pub(crate) struct FailoverPlan {
    pub(crate) layer: FailoverLayer,
    pub(crate) replicas: Vec<String>,
    pub(crate) monotonic: Option<MonotonicLayer>,
}

impl FailoverConfig {
    /// The plan, validated (replicas are checked against the configuration when opened).
    pub(crate) fn plan(&self, at: &At) -> Result<FailoverPlan> {
        if self.replicas.is_empty() {
            return Err(config_error(
                &at.key("failover.replicas"),
                "missing: name at least one other store of this configuration",
            ));
        }
        let name = at.store_name().unwrap_or("primary");
        let mut layer = FailoverLayer::new(name);
        if let Some(n) = self.fail_after {
            layer = layer.fail_after(n);
        }
        if let Some(n) = self.fail_back_after {
            layer = layer.fail_back_after(n);
        }
        if let Some(d) = self.hold_down {
            layer = layer.hold_down(d);
        }
        if let Some(d) = self.probe_interval {
            layer = layer.probe_interval(d);
        }
        let monotonic = (self.monotonic == Some(true)).then(MonotonicLayer::new);
        if let Some(m) = &monotonic {
            layer = layer.floors(m.floors());
        }
        // The replicas are added when opened; check the rest now with a stand-in.
        let probe = FailoverLayer::new(name)
            .fail_after(self.fail_after.unwrap_or(FailoverLayer::DEFAULT_FAIL_AFTER))
            .fail_back_after(
                self.fail_back_after
                    .unwrap_or(FailoverLayer::DEFAULT_FAIL_BACK_AFTER),
            )
            .probe_interval(
                self.probe_interval
                    .unwrap_or(FailoverLayer::DEFAULT_PROBE_INTERVAL),
            )
            .replica(kms_core::FailoverTarget::new(
                "\u{0}replica",
                std::sync::Arc::new(kms_core::MemoryStore::new()),
            ));
        probe
            .validate()
            .map_err(|e| while_applying(&at.key("failover"), e))?;
        Ok(FailoverPlan {
            layer,
            replicas: self.replicas.clone(),
            monotonic,
        })
    }
}
