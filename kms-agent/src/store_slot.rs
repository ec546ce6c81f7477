//! [`StoreSlot`]: one configured store, built, with what the agent needs besides the store
//! itself: its fingerprint (a reload keeps the slot, and so its cache, when the fingerprint is
//! unchanged), the stores it opens on demand for other AWS staging labels, and how long it has
//! been failing its health probe.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kms::{Error, ErrorKind, KeyStore};
use parking_lot::Mutex;
use tokio::sync::OnceCell;

/// Staging labels other than `AWSCURRENT` an AWS store may be asked for, at most. Each is a
/// store of its own (an SDK client and a cache), opened on first use.
pub const MAX_STAGE_STORES: usize = 8;

/// The cache's TTL when its table does not set one (kms-cache's default).
const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// A built store and the agent's bookkeeping about it.
pub struct StoreSlot {
    name: String,
    stack: kms::Stack,
    config: kms::StoreConfig,
    fingerprint: u64,
    opener: kms::Opener,
    stages: Mutex<BTreeMap<String, Arc<OnceCell<kms::Stack>>>>,
    down_since: Mutex<Option<Instant>>,
}

impl fmt::Debug for StoreSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreSlot")
            .field("name", &self.name)
            .field("stack", &format_args!("{}", self.stack))
            .finish_non_exhaustive()
    }
}

impl StoreSlot {
    /// Builds store `name` of `config`.
    ///
    /// # Errors
    ///
    /// What the facade returns: a configuration error naming the key, or the backend's
    /// answer when it is reached at build (a Vault login).
    pub async fn open(
        name: &str,
        config: &kms::Config,
        fingerprint: u64,
        opener: &kms::Opener,
    ) -> kms::Result<Self> {
        let stack = opener.open_named(config, name).await?;
        let store_config = config
            .store(name)
            .cloned()
            .ok_or_else(|| Error::new(ErrorKind::Configuration, format!("no store {name}")))?;
        Ok(Self {
            name: name.to_owned(),
            stack,
            config: store_config,
            fingerprint,
            opener: opener.clone(),
            stages: Mutex::new(BTreeMap::new()),
            down_since: Mutex::new(None),
        })
    }

    /// The store's name in the configuration.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store (the outermost layer of its stack).
    pub fn store(&self) -> &Arc<dyn KeyStore> {
        self.stack.store()
    }

    /// The cache, if the store has one.
    pub fn cache(&self) -> Option<&kms::cache::CacheHandle> {
        self.stack.cache()
    }

    /// Empties the store's cache, or drops `key` from it, and the same in the stores opened
    /// for other staging labels. A load in flight is not cached afterwards (the cache's
    /// invalidation), so the next read goes to the backend. Returns whether there was a cache.
    pub fn clear_cache(&self, key: Option<&kms::KeyName>) -> bool {
        let stages: Vec<kms::cache::CacheHandle> = self
            .stages
            .lock()
            .values()
            .filter_map(|cell| cell.get().and_then(|s| s.cache().cloned()))
            .collect();
        let mut had = false;
        for cache in self.cache().into_iter().chain(stages.iter()) {
            had = true;
            match key {
                Some(key) => cache.invalidate(key),
                None => cache.invalidate_all(),
            }
        }
        had
    }

    /// The circuit breaker's state, if the store has one.
    pub fn circuit(&self) -> Option<kms::CircuitState> {
        self.stack.breaker().map(|b| b.state())
    }

    /// The fingerprint of the configuration it was built from.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Whether staging labels other than `AWSCURRENT` are real (an AWS Secrets Manager store).
    pub fn has_stages(&self) -> bool {
        self.config.aws.is_some()
    }

    /// The store reading staging label `stage` (an AWS store: a copy of this store's
    /// configuration with `aws.version_stage = stage`, opened on first use and kept).
    ///
    /// # Errors
    ///
    /// [`Unsupported`](ErrorKind::Unsupported) for a store that is not AWS Secrets Manager;
    /// [`InvalidInput`](ErrorKind::InvalidInput) once [`MAX_STAGE_STORES`] other labels are
    /// open; what opening the store returns.
    pub async fn stage(&self, stage: &str) -> kms::Result<Arc<dyn KeyStore>> {
        if stage == "AWSCURRENT"
            && self
                .config
                .aws
                .as_ref()
                .is_some_and(|a| a.version_stage.is_none())
        {
            return Ok(self.store().clone());
        }
        if !self.has_stages() {
            return Err(Error::unsupported(format_args!(
                "staging labels: store `{}` is not AWS Secrets Manager",
                self.name
            )));
        }
        let cell = {
            let mut stages = self.stages.lock();
            if let Some(cell) = stages.get(stage) {
                cell.clone()
            } else {
                if stages.len() >= MAX_STAGE_STORES {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        format!(
                            "at most {MAX_STAGE_STORES} staging labels besides AWSCURRENT are served"
                        ),
                    ));
                }
                let cell = Arc::new(OnceCell::new());
                stages.insert(stage.to_owned(), cell.clone());
                cell
            }
        };
        let stack = cell
            .get_or_try_init(|| async {
                let mut config = self.config.clone();
                if let Some(aws) = config.aws.as_mut() {
                    aws.version_stage = Some(stage.to_owned());
                }
                self.opener.open_config(&self.name, &config).await
            })
            .await?;
        Ok(stack.store().clone())
    }

    /// How long after a backend outage starts the cache may still answer: its TTL (an entry
    /// loaded just before stays fresh that long) plus `cache.stale_if_error`. `None`: the
    /// store serves nothing stale.
    pub fn stale_window(&self) -> Option<Duration> {
        let cache = self
            .config
            .cache
            .as_ref()
            .filter(|c| c.enabled != Some(false))?;
        let stale = cache.stale_if_error?;
        Some(cache.ttl.unwrap_or(DEFAULT_TTL) + stale)
    }

    /// Records a health probe's result; returns how long the store has been failing.
    pub fn record_health(&self, ok: bool) -> Option<Duration> {
        let mut since = self.down_since.lock();
        if ok {
            *since = None;
            None
        } else {
            Some(since.get_or_insert_with(Instant::now).elapsed())
        }
    }
}

#[cfg(test)]
mod tests {
    use kms::KeyStoreExt;

    use super::*;

    async fn slot(toml: &str) -> StoreSlot {
        let config = kms::Config::from_toml_str(toml).unwrap();
        StoreSlot::open(
            "s",
            &config,
            7,
            &kms::Opener::new().metrics_registry(kms::MetricsRegistry::new()),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn opens_the_named_store() {
        let s = slot("[stores.s.memory]\n[stores.s.cache]\nttl = \"1m\"").await;
        assert_eq!(s.name(), "s");
        assert_eq!(s.fingerprint(), 7);
        assert!(s.cache().is_some());
        assert!(!s.has_stages());
        s.store().put("a", "1").await.unwrap();
        assert_eq!(
            s.store()
                .get_value("a")
                .await
                .unwrap()
                .expose_str()
                .unwrap(),
            "1"
        );
        assert!(format!("{s:?}").contains("Cache(Memory)"));
    }

    #[tokio::test]
    async fn clearing_the_cache_makes_the_next_read_go_to_the_backend() {
        let s = slot("[stores.s.memory]\n[stores.s.cache]\nttl = \"1h\"").await;
        let cache = s.cache().unwrap().clone();
        s.store().put("a", "1").await.unwrap();
        s.store().put("b", "2").await.unwrap();
        s.store().get_value("a").await.unwrap();
        s.store().get_value("b").await.unwrap();
        assert_eq!(cache.stats().entries, 2);
        assert!(s.clear_cache(Some(&kms::KeyName::new("a").unwrap())));
        assert_eq!(cache.stats().entries, 1);
        assert!(s.clear_cache(None));
        assert_eq!(cache.stats().entries, 0);
        let uncached = slot("[stores.s.memory]").await;
        assert!(!uncached.clear_cache(None), "no cache to clear");
    }

    #[tokio::test]
    async fn stages_are_for_aws_stores_only() {
        let s = slot("[stores.s.memory]").await;
        let e = s.stage("AWSPREVIOUS").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
    }

    #[tokio::test]
    async fn stale_window_is_ttl_plus_stale_if_error() {
        let s = slot("[stores.s.memory]\n[stores.s.cache]\nttl = \"1m\"\nstale_if_error = \"1h\"")
            .await;
        assert_eq!(s.stale_window(), Some(Duration::from_secs(3660)));
        let s = slot("[stores.s.memory]\n[stores.s.cache]\nstale_if_error = \"1h\"").await;
        assert_eq!(s.stale_window(), Some(Duration::from_secs(3900)));
        let s = slot("[stores.s.memory]\n[stores.s.cache]\nttl = \"1m\"").await;
        assert_eq!(s.stale_window(), None);
        let s = slot("[stores.s.memory]").await;
        assert_eq!(s.stale_window(), None);
    }

    #[tokio::test]
    async fn health_records_when_the_outage_started() {
        let s = slot("[stores.s.memory]").await;
        assert_eq!(s.record_health(true), None);
        let first = s.record_health(false).unwrap();
        let second = s.record_health(false).unwrap();
        assert!(second >= first);
        assert_eq!(s.record_health(true), None);
    }
}
