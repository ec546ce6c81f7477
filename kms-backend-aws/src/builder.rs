//! [`SecretsManagerStoreBuilder`]: how a [`SecretsManagerStore`] names, creates and deletes
//! secrets.

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::Client;
use kms_core::{Error, ErrorKind, Result};

use crate::namespace::Namespace;
use crate::secrets_manager::SecretsManagerStore;
use crate::version_stage::VersionStage;

/// What `remove` does to a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deletion {
    /// Schedule deletion after this many days (7–30); until then the secret can be restored
    /// and its name cannot be reused (a `store` fails with
    /// [`ErrorKind::Conflict`] unless [`restore_deleted`](SecretsManagerStoreBuilder::restore_deleted)
    /// is on).
    RecoveryWindowDays(u8),
    /// Delete at once, with no recovery (`ForceDeleteWithoutRecovery`).
    Force,
}

impl Default for Deletion {
    /// AWS's default: a 30-day recovery window.
    fn default() -> Self {
        Self::RecoveryWindowDays(30)
    }
}

/// Settings of secrets this store creates.
#[derive(Clone, Debug, Default)]
pub(crate) struct CreateOptions {
    pub(crate) kms_key_id: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) tags: Vec<(String, String)>,
}

/// Builds a [`SecretsManagerStore`]. Get one from [`SecretsManagerStore::builder`] or
/// [`SecretsManagerStore::builder_from_client`].
#[derive(Clone, Debug)]
pub struct SecretsManagerStoreBuilder {
    pub(crate) client: Client,
    pub(crate) namespace: Namespace,
    pub(crate) stage: VersionStage,
    pub(crate) create: CreateOptions,
    pub(crate) deletion: Deletion,
    pub(crate) restore_deleted: bool,
    pub(crate) page_size: i32,
}

impl SecretsManagerStoreBuilder {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            namespace: Namespace::default(),
            stage: VersionStage::Current,
            create: CreateOptions::default(),
            deletion: Deletion::default(),
            restore_deleted: false,
            page_size: 100,
        }
    }

    pub(crate) fn from_config(config: &SdkConfig) -> Self {
        Self::new(Client::new(config))
    }

    /// Keeps every secret under `<namespace>/`, so services sharing an account cannot see or
    /// overwrite each other's keys (`list` returns names relative to it). Validated like a key
    /// name: no `..`, no empty segments; one trailing `/` is allowed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] for a namespace that breaks the key-name rules, and for an
    /// empty one (`""`, `"/"`, `"//"`): that would be the whole account, which is what leaving
    /// the namespace unset means.
    pub fn namespace(mut self, namespace: &str) -> Result<Self> {
        self.namespace = Namespace::new(namespace)?;
        Ok(self)
    }

    /// The staging label `get` reads (default [`VersionStage::Current`]).
    #[must_use]
    pub fn version_stage(mut self, stage: VersionStage) -> Self {
        self.stage = stage;
        self
    }

    /// Encrypts secrets this store creates with this customer-managed KMS key (id, ARN or
    /// alias) instead of `aws/secretsmanager`.
    #[must_use]
    pub fn kms_key_id(mut self, key: impl Into<String>) -> Self {
        self.create.kms_key_id = Some(key.into());
        self
    }

    /// The description of secrets this store creates.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.create.description = Some(description.into());
        self
    }

    /// Adds a tag to secrets this store creates (e.g. `owner`, `cost-center`).
    #[must_use]
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.create.tags.push((key.into(), value.into()));
        self
    }

    /// What `remove` does (default: a 30-day recovery window).
    ///
    /// A recovery window outside AWS's 7–30 days is an [`ErrorKind::Configuration`] error.
    pub fn deletion(mut self, deletion: Deletion) -> Result<Self> {
        if let Deletion::RecoveryWindowDays(days) = deletion
            && !(7..=30).contains(&days)
        {
            return Err(Error::new(
                ErrorKind::Configuration,
                format!("recovery window of {days} days: AWS allows 7 to 30"),
            ));
        }
        self.deletion = deletion;
        Ok(self)
    }

    /// Whether `store` of a key whose secret is scheduled for deletion restores it
    /// (`RestoreSecret`) and writes the new value as its current version. Off by default: the
    /// store then fails with [`ErrorKind::Conflict`] naming the way out.
    #[must_use]
    pub fn restore_deleted(mut self, on: bool) -> Self {
        self.restore_deleted = on;
        self
    }

    /// How many names one `ListSecrets` page asks for (1–100, default 100). `list` follows
    /// every page whatever the size.
    pub fn list_page_size(mut self, size: u8) -> Result<Self> {
        if !(1..=100).contains(&size) {
            return Err(Error::new(
                ErrorKind::Configuration,
                format!("list page size {size}: AWS allows 1 to 100"),
            ));
        }
        self.page_size = i32::from(size);
        Ok(self)
    }

    /// The store.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] when the client has no region (the SDK could not sign a
    /// single request): set `AWS_REGION`, a profile's `region`, or
    /// [`AwsConnection::region`](crate::AwsConnection::region).
    pub fn build(self) -> Result<SecretsManagerStore> {
        crate::connection::require_region(self.client.config().region(), "Secrets Manager store")?;
        Ok(SecretsManagerStore::from_builder(self))
    }
}
