//! [`Failover`]: the store a [`FailoverLayer`](crate::FailoverLayer) makes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;

use super::handle::{FailoverHandle, Shared};
use super::target::FailoverTarget;
use crate::error::{Error, ErrorKind, Result};
use crate::key_name::{KeyName, KeyPrefix};
use crate::layers::floors::VersionFloors;
use crate::secret::{SecretMeta, SecretValue, StoredSecret};
use crate::store::{Capabilities, KeyStore, PreviousVersion};

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// How the targets that are down are probed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Probing {
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
}

/// One logical store over an ordered list of stores: reads from the first healthy one,
/// writes to the primary only. See [`FailoverLayer`](crate::FailoverLayer).
pub struct Failover {
    targets: Arc<[FailoverTarget]>,
    shared: Arc<Shared>,
    floors: Option<VersionFloors>,
    probing: Probing,
}

impl Failover {
    pub(crate) fn new(
        targets: Vec<FailoverTarget>,
        shared: Arc<Shared>,
        floors: Option<VersionFloors>,
        probing: Probing,
    ) -> Self {
        Self {
            targets: targets.into(),
            shared,
            floors,
            probing,
        }
    }

    /// The handle watching this store (shared with its layer's).
    pub fn handle(&self) -> FailoverHandle {
        FailoverHandle {
            shared: self.shared.clone(),
        }
    }

    /// Refreshes what breakers and signals say, starts a probe of the targets that are down
    /// if one is due, and returns the order a read tries the targets in.
    fn read_order(&self) -> Vec<usize> {
        self.shared.refresh(|i| self.targets[i].known_down());
        self.probe_if_due();
        self.shared.read_order()
    }

    /// Spawns one probe round (if due, none running, targets down and a Tokio runtime here):
    /// `health` of each target that is down, each bounded by the probe timeout. Detached; it
    /// owns what it needs, and a guard clears the "probing" flag however it ends.
    fn probe_if_due(&self) {
        if !self.shared.any_down() || self.shared.probing.load(Ordering::Relaxed) {
            return;
        }
        {
            let mut last = self
                .shared
                .last_probe
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < self.probing.interval) {
                return;
            }
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return;
            };
            if self.shared.probing.swap(true, Ordering::AcqRel) {
                return;
            }
            *last = Some(Instant::now());
            let (targets, shared, timeout) = (
                self.targets.clone(),
                self.shared.clone(),
                self.probing.timeout,
            );
            runtime.spawn(async move {
                let _done = ProbeDone(shared.clone());
                for (i, target) in targets.iter().enumerate() {
                    if !shared.is_down(i) {
                        continue;
                    }
                    let ok = matches!(
                        tokio::time::timeout(timeout, target.store.health()).await,
                        Ok(Ok(()))
                    ) && !target.known_down();
                    if ok {
                        shared.success(i);
                    } else {
                        shared.failure(i);
                    }
                }
            });
        }
    }

    /// A read over the targets in read order: the first answer that is not behind `behind`
    /// wins; an unhealthy failure (unavailable, timeout, rate limited, circuit open) moves
    /// on to the next target; any other error is the answer.
    async fn read<'a, T: Send>(
        &'a self,
        call: impl Fn(&'a Arc<dyn KeyStore>) -> BoxFut<'a, T> + Send,
        behind: impl Fn(&T) -> bool + Send,
    ) -> Result<T> {
        let mut first_error = None;
        let mut behind_seen = false;
        for i in self.read_order() {
            match call(&self.targets[i].store).await {
                Ok(answer) if behind(&answer) => {
                    behind_seen = true;
                    self.shared.behind(i);
                }
                Ok(answer) => {
                    self.shared.success(i);
                    return Ok(answer);
                }
                Err(e) if e.kind().serves_stale() => {
                    self.shared.failure(i);
                    first_error.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(match first_error {
            Some(e) if !behind_seen => e,
            _ => Error::new(
                ErrorKind::Unavailable,
                "every failover target is behind a version already returned, or failed",
            )
            .with_backend(self.backend()),
        })
    }

    /// A write, to the primary only. While another target serves reads, a failure says so.
    async fn write<T>(&self, fut: BoxFut<'_, T>) -> Result<T> {
        self.shared.refresh(|i| self.targets[i].known_down());
        match fut.await {
            Ok(v) => {
                self.shared.success(0);
                Ok(v)
            }
            Err(e) => {
                if e.kind().serves_stale() {
                    self.shared.failure(0);
                }
                let active = self.shared.active();
                if active == 0 {
                    return Err(e);
                }
                let mut loud = Error::new(
                    e.kind(),
                    format!(
                        "{} (failover: writes go to the primary '{}' only, never to a replica; \
                         reads are served by '{}' while it is down)",
                        e.message(),
                        self.targets[0].name,
                        self.targets[active].name
                    ),
                );
                if let Some(backend) = e.backend() {
                    loud = loud.with_backend(backend);
                }
                if let Some(code) = e.code() {
                    loud = loud.with_code(code.to_owned());
                }
                Err(if e.proves_not_applied() {
                    loud.not_applied()
                } else {
                    loud
                })
            }
        }
    }

    fn floors_behind(&self, key: &KeyName, meta: &SecretMeta) -> bool {
        self.floors.as_ref().is_some_and(|f| f.is_behind(key, meta))
    }
}

/// Clears the "probing" flag when a probe round ends, however it ends.
struct ProbeDone(Arc<Shared>);

impl Drop for ProbeDone {
    fn drop(&mut self) {
        self.0.probing.store(false, Ordering::Release);
    }
}

impl fmt::Display for Failover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Failover(")?;
        for (i, t) in self.targets.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", t.store)?;
        }
        f.write_str(")")
    }
}

impl fmt::Debug for Failover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failover")
            .field("targets", &self.targets)
            .field("handle", &self.handle())
            .finish()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl KeyStore for Failover {
    fn backend(&self) -> &'static str {
        self.targets[0].store.backend()
    }
    fn capabilities(&self) -> Capabilities {
        // What every target can do: a read may be served by any of them.
        self.targets
            .iter()
            .map(|t| t.store.capabilities())
            .reduce(|a, b| {
                Capabilities::new()
                    .with_list(a.list && b.list)
                    .with_versions(a.versions && b.versions)
                    .with_max_value_len(a.max_value_len.min(b.max_value_len))
                    // Overlap reads work on whichever target serves only if every target
                    // names its previous version the same way.
                    .with_previous_version(if a.previous_version == b.previous_version {
                        a.previous_version
                    } else {
                        PreviousVersion::None
                    })
            })
            .unwrap_or_default()
    }
    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        self.read(
            |s| s.get(key),
            |secret: &StoredSecret| self.floors_behind(key, &secret.meta),
        )
        .await
    }
    fn get_now(&self, key: &KeyName) -> Option<Result<StoredSecret>> {
        // Forwarded to the target serving reads (a cache in its stack answers at once); an
        // answer behind the floor is not returned, `get` then asks.
        let secret = self.targets[self.shared.active()].store.get_now(key)?;
        match secret {
            Ok(s) if self.floors_behind(key, &s.meta) => None,
            other => Some(other),
        }
    }
    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        // A read like `get`: meaningful across targets that share version ids (AWS replica
        // Regions do; two Vault clusters kept in sync by copying do not).
        self.read(|s| s.get_version(key, version), |_: &StoredSecret| false)
            .await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        self.write(self.targets[0].store.store(key, value)).await
    }
    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> Result<SecretMeta> {
        self.write(self.targets[0].store.store_if_version(key, value, expected))
            .await
    }
    async fn remove(&self, key: &KeyName) -> Result<()> {
        self.write(self.targets[0].store.remove(key)).await
    }
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        self.read(|s| s.list(prefix), |_: &Vec<KeyName>| false)
            .await
    }
    async fn health(&self) -> Result<()> {
        // Healthy while some target serves reads (the handle and metrics say which).
        self.read(|s| s.health(), |_: &()| false).await
    }
}
