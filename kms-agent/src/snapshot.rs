//! [`Snapshot`]: one applied configuration (built stores, settings, token), immutable; a
//! reload builds the next one, reusing every store whose configuration did not change, and
//! swaps it in whole, so a request sees one configuration from start to end.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{AgentConfig, AgentSettings, SecretsManagerSettings};
use crate::store_slot::StoreSlot;
use crate::token::Token;

/// An applied configuration.
#[derive(Debug)]
pub struct Snapshot {
    /// 1 for the configuration the agent started with, +1 per applied reload.
    pub generation: u64,
    /// The stores, by name.
    pub stores: BTreeMap<String, Arc<StoreSlot>>,
    /// The store the AWS-compatible API and `/kms/v1/secrets/…` read.
    pub default_store: Option<String>,
    /// `[capabilities.secrets_manager]`.
    pub secrets_manager: SecretsManagerSettings,
    /// `[agent]`.
    pub agent: AgentSettings,
    /// The SSRF token.
    pub token: Arc<Token>,
}

/// What a build did to the stores, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Changes {
    /// Unchanged: the same store (and cache) keeps serving.
    pub kept: Vec<String>,
    /// Changed: built anew.
    pub rebuilt: Vec<String>,
    /// New.
    pub added: Vec<String>,
    /// Gone.
    pub removed: Vec<String>,
}

impl Snapshot {
    /// Builds the snapshot `config` describes, reusing the stores of `previous` whose
    /// fingerprint is unchanged; `env` looks up environment variables (the token).
    ///
    /// # Errors
    ///
    /// The first store that cannot be built, or the token that cannot be found; nothing of
    /// the new configuration is applied then.
    pub async fn build(
        config: &AgentConfig,
        previous: Option<&Snapshot>,
        opener: &kms::Opener,
        env: &(dyn Fn(&str) -> Option<String> + Send + Sync),
    ) -> kms::Result<(Self, Changes)> {
        let sm = config.secrets_manager();
        let token = Arc::new(Token::find(&sm.ssrf_env_variables, env)?);
        let mut stores = BTreeMap::new();
        let mut changes = Changes::default();
        for name in config.stores().store_names() {
            let fingerprint = config.fingerprint(name).unwrap_or_default();
            let old = previous.and_then(|p| p.stores.get(name));
            let slot = match old {
                Some(slot) if slot.fingerprint() == fingerprint => {
                    changes.kept.push(name.to_owned());
                    slot.clone()
                }
                _ => {
                    if old.is_some() {
                        changes.rebuilt.push(name.to_owned());
                    } else if previous.is_some() {
                        changes.added.push(name.to_owned());
                    }
                    Arc::new(StoreSlot::open(name, config.stores(), fingerprint, opener).await?)
                }
            };
            stores.insert(name.to_owned(), slot);
        }
        if let Some(p) = previous {
            changes.removed = p
                .stores
                .keys()
                .filter(|n| !stores.contains_key(*n))
                .cloned()
                .collect();
        }
        Ok((
            Self {
                generation: previous.map_or(1, |p| p.generation + 1),
                stores,
                default_store: config.stores().default_store().map(str::to_owned),
                secrets_manager: sm.clone(),
                agent: config.agent().clone(),
                token,
            },
            changes,
        ))
    }

    /// Store `name`.
    pub fn store(&self, name: &str) -> Option<&Arc<StoreSlot>> {
        self.stores.get(name)
    }

    /// The default store.
    pub fn default_slot(&self) -> Option<&Arc<StoreSlot>> {
        self.default_store
            .as_deref()
            .and_then(|n| self.stores.get(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        (k == "AWS_TOKEN").then(|| "t".to_owned())
    }

    fn config(text: &str) -> AgentConfig {
        AgentConfig::from_toml_str(text).unwrap()
    }

    #[tokio::test]
    async fn a_rebuild_keeps_unchanged_stores() {
        let opener = kms::Opener::new().metrics_registry(kms::MetricsRegistry::new());
        let one =
            config("default = \"a\"\n[stores.a.memory]\n[stores.b.memory]\n[stores.c.memory]");
        let (first, changes) = Snapshot::build(&one, None, &opener, &env).await.unwrap();
        assert_eq!(first.generation, 1);
        assert_eq!(changes, Changes::default());
        assert_eq!(first.default_slot().unwrap().name(), "a");

        let two = config(
            "default = \"a\"\n[stores.a.memory]\n[stores.b.memory]\nmax_versions = 2\n[stores.d.memory]",
        );
        let (second, changes) = Snapshot::build(&two, Some(&first), &opener, &env)
            .await
            .unwrap();
        assert_eq!(second.generation, 2);
        assert_eq!(changes.kept, ["a"]);
        assert_eq!(changes.rebuilt, ["b"]);
        assert_eq!(changes.added, ["d"]);
        assert_eq!(changes.removed, ["c"]);
        assert!(Arc::ptr_eq(&first.stores["a"], &second.stores["a"]));
        assert!(!Arc::ptr_eq(&first.stores["b"], &second.stores["b"]));
    }

    #[tokio::test]
    async fn no_token_no_snapshot() {
        let opener = kms::Opener::new().metrics_registry(kms::MetricsRegistry::new());
        let e = Snapshot::build(&config("[stores.a.memory]"), None, &opener, &|_: &str| None)
            .await
            .unwrap_err();
        assert!(e.message().contains("no SSRF token"), "{e}");
    }
}
