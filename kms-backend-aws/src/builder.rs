//! [`SecretsManagerStoreBuilder`]: how a [`SecretsManagerStore`] names, creates and deletes
//! secrets, and [`SecretsManagerStore::builder`], where one starts.

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::Client;
use kms_core::{Error, ErrorKind, Result};

use crate::client::{CreateOptions, SecretsClient};
use crate::deletion::Deletion;
use crate::namespace::Namespace;
use crate::store::SecretsManagerStore;
use crate::version_stage::VersionStage;

impl SecretsManagerStore {
    /// A builder over a client made from `config` (see
    /// [`AwsConnection`](crate::AwsConnection)).
    pub fn builder(config: &SdkConfig) -> SecretsManagerStoreBuilder {
        SecretsManagerStoreBuilder::new(Client::new(config))
    }

    /// A builder over a client the service already has.
    pub fn builder_from_client(client: Client) -> SecretsManagerStoreBuilder {
        SecretsManagerStoreBuilder::new(client)
    }
}

/// Builds a [`SecretsManagerStore`]. Get one from [`SecretsManagerStore::builder`] or
/// [`SecretsManagerStore::builder_from_client`].
#[derive(Clone, Debug)]
pub struct SecretsManagerStoreBuilder {
    client: Client,
    namespace: Namespace,
    stage: VersionStage,
    create: CreateOptions,
    deletion: Deletion,
    restore_deleted: bool,
    page_size: i32,
    rotation_schedule: bool,
}

impl SecretsManagerStoreBuilder {
    fn new(client: Client) -> Self {
        Self {
            client,
            namespace: Namespace::default(),
            stage: VersionStage::Current,
            create: CreateOptions::default(),
            deletion: Deletion::default(),
            restore_deleted: false,
            page_size: 100,
            rotation_schedule: false,
        }
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

    /// Whether `get` also reports when the secret will next rotate
    /// ([`SecretMeta::next_rotation`](kms_core::SecretMeta::next_rotation), which a cache
    /// above never keeps a value fresh past): `DescribeSecret`'s `NextRotationDate`, or
    /// `LastRotatedDate` plus `RotationRules` (`AutomaticallyAfterDays`, `rate(N days|hours)`).
    /// Off by default.
    ///
    /// **Cost.** `DescribeSecret` counts against the same request quota as `GetSecretValue`
    /// (10,000 per second per account and region), so it is not sent with every `get`: a
    /// secret is described on the first read of each version (when the date can have moved)
    /// and at most once an hour otherwise, the answer remembered by the store and its
    /// clones. With a cache above, that is at most one extra request per secret per rotation
    /// and per hour, against one `GetSecretValue` per TTL. Needs
    /// `secretsmanager:DescribeSecret`; a failed description (denied, throttled) never fails
    /// the `get`: the value comes without a date, and the failure is not retried for an
    /// hour.
    #[must_use]
    pub fn rotation_schedule(mut self, on: bool) -> Self {
        self.rotation_schedule = on;
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
        let client = SecretsClient::new(self.client, self.create, self.deletion, self.page_size);
        Ok(SecretsManagerStore::new(
            client,
            self.namespace,
            self.stage,
            self.restore_deleted,
            self.rotation_schedule,
        ))
    }
}
