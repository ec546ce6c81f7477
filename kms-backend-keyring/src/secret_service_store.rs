//! The freedesktop Secret Service (GNOME Keyring, KWallet) as a `keyring_core` credential
//! store, with every D-Bus call bounded in time and no lock held across calls.
//!
//! Built on the `secret-service` crate's async API over its own `zbus` connection (with
//! zbus's `method_timeout`), each call driven by `async_io::block_on` and raced against an
//! [`async_io::Timer`]: a daemon that stops answering makes each call fail after the timeout,
//! independently of the others (there is no mutex to queue behind), and the calling thread is
//! released.
//!
//! An item that no search finds is reported as missing only when the default collection,
//! where this store writes, exists and is unlocked: a daemon without a login keyring, or with
//! a locked one, is "cannot be accessed" (`Unavailable`), never an empty store.
//!
//! An entry `(service, name)` is the item whose attributes are `service=<service>` and
//! `username=<name>` (labelled `keyring:<name>@<service>`), in the default collection: the
//! format of `zbus-secret-service-keyring-store` and the `keyring` crate, so
//! `secret-tool store --label=x service <service> username <name>` writes an entry this store
//! reads.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::FutureExt as _;
use keyring_core::api::{CredentialApi, CredentialStoreApi};
use keyring_core::{Credential, Entry};
use secret_service::{EncryptionType, Error as SsError, Item, SecretService};

use crate::error_map::PlatformTimeout;

const CONTENT_TYPE: &str = "application/octet-stream";

/// The Secret Service as a `keyring_core` credential store.
#[derive(Clone)]
pub(crate) struct SecretServiceStore(Arc<Shared>);

struct Shared {
    ss: SecretService<'static>,
    timeout: Duration,
}

impl std::fmt::Debug for SecretServiceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretServiceStore")
            .field("timeout", &self.0.timeout)
            .finish_non_exhaustive()
    }
}

/// Why a Secret Service call failed.
enum Fail {
    Ss(SsError),
    NoEntry,
    Ambiguous(usize),
    /// There is no default collection (alias `default`): no login keyring.
    NoCollection,
    /// The default collection is locked.
    Locked,
}

impl From<SsError> for Fail {
    fn from(e: SsError) -> Self {
        Self::Ss(e)
    }
}

/// Runs `fut` to completion on this thread, failing after `timeout`.
fn bounded<T>(
    what: &'static str,
    timeout: Duration,
    fut: impl Future<Output = Result<T, Fail>>,
) -> std::result::Result<T, keyring_core::Error> {
    let expired = async {
        async_io::Timer::after(timeout).await;
        Err(keyring_core::Error::PlatformFailure(Box::new(
            PlatformTimeout::new(what, timeout),
        )))
    };
    async_io::block_on(async { fut.await.map_err(|f| to_keyring(f, what, timeout)) }.or(expired))
}

/// D-Bus errors that are a refusal: nothing reached the daemon (no Secret Service on the bus)
/// or the daemon refused before changing anything (a locked object).
const REFUSALS: [&str; 3] = [
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
    "org.freedesktop.Secret.Error.IsLocked",
];

/// Whether `err` is zbus's own method timeout (`method_timeout`, the same bound as ours).
fn timed_out(err: &SsError) -> bool {
    matches!(err, SsError::Zbus(zbus::Error::InputOutput(io))
        if io.kind() == std::io::ErrorKind::TimedOut)
}

/// Whether `err` is a refusal (see [`REFUSALS`]).
fn refused(err: &SsError) -> bool {
    let fdo_refusal = |e: &zbus::fdo::Error| {
        matches!(
            e,
            zbus::fdo::Error::ServiceUnknown(_) | zbus::fdo::Error::NameHasNoOwner(_)
        )
    };
    match err {
        SsError::Zbus(zbus::Error::MethodError(name, _, _)) => REFUSALS.contains(&name.as_str()),
        SsError::Zbus(zbus::Error::FDO(e)) => fdo_refusal(e),
        SsError::ZbusFdo(e) => fdo_refusal(e),
        _ => false,
    }
}

fn to_keyring(fail: Fail, what: &'static str, timeout: Duration) -> keyring_core::Error {
    match fail {
        Fail::Ss(err) if timed_out(&err) => {
            keyring_core::Error::PlatformFailure(Box::new(PlatformTimeout::new(what, timeout)))
        }
        Fail::Ss(err) => {
            let hint = match err {
                SsError::Locked => "the item or collection is locked",
                SsError::NoResult => "the Secret Service does not have the object asked for",
                SsError::Prompt => {
                    "the collection is locked and unlocking it needs a password prompt, which \
                     was dismissed (no desktop session to show it?): unlock the collection \
                     first, e.g. with `gnome-keyring-daemon --unlock` and the password on its \
                     standard input"
                }
                SsError::PromptDisconnected => {
                    "the Secret Service went away while an unlock prompt was open"
                }
                _ if refused(&err) => {
                    "the Secret Service refused the call (no Secret Service on the bus, or a \
                     locked object)"
                }
                other => return keyring_core::Error::PlatformFailure(Box::new(other)),
            };
            keyring_core::Error::NoStorageAccess(format!("{hint}: {err}").into())
        }
        Fail::NoEntry => keyring_core::Error::NoEntry,
        // The entries are only counted by `to_error`.
        Fail::Ambiguous(n) => keyring_core::Error::Ambiguous(
            (0..n)
                .map(|_| Entry::new_with_credential(Arc::new(Placeholder)))
                .collect(),
        ),
        Fail::NoCollection => no_collection(
            "the Secret Service has no default collection (no login keyring), where this store \
             keeps its entries",
        ),
        Fail::Locked => no_collection(
            "the Secret Service's default collection, where this store keeps its entries, is \
             locked",
        ),
    }
}

fn no_collection(why: &str) -> keyring_core::Error {
    keyring_core::Error::NoStorageAccess(
        format!(
            "{why}: set up a default (login) collection and unlock it: log in through a desktop \
             session or PAM (pam_gnome_keyring), or start `gnome-keyring-daemon --unlock` with \
             the keyring password on its standard input"
        )
        .into(),
    )
}

impl SecretServiceStore {
    /// Connects to the session bus and opens a Secret Service session, within `timeout`.
    pub(crate) fn connect(timeout: Duration) -> keyring_core::Result<Arc<Self>> {
        let ss = bounded("connecting to the Secret Service", timeout, async move {
            let conn = zbus::connection::Builder::session()
                .map_err(SsError::Zbus)?
                .method_timeout(timeout)
                .build()
                .await
                .map_err(SsError::Zbus)?;
            Ok(SecretService::connect_with_existing(EncryptionType::Dh, conn).await?)
        })?;
        Ok(Arc::new(Self(Arc::new(Shared { ss, timeout }))))
    }

    /// Checks that a default collection exists and is unlocked, so that reads can tell a
    /// missing entry and writes can succeed.
    pub(crate) fn health(&self) -> keyring_core::Result<()> {
        bounded("probing the default collection", self.0.timeout, async {
            match self.0.absent().await {
                Fail::NoEntry => Ok(()),
                unusable => Err(unusable),
            }
        })
    }
}

impl SecretServiceStore {
    /// Deletes every item of `(service, user)` (two or more when another program wrote a
    /// second one); returns how many it deleted.
    pub(crate) fn delete_all(&self, service: &str, user: &str) -> keyring_core::Result<usize> {
        let ss = &self.0.ss;
        bounded("deleting Secret Service items", self.0.timeout, async {
            let attributes = HashMap::from([("service", service), ("username", user)]);
            let found = ss.search_items(attributes).await?;
            if !found.locked.is_empty() {
                let locked: Vec<&Item<'_>> = found.locked.iter().collect();
                ss.unlock_all(&locked).await?;
            }
            let mut deleted = 0;
            for item in found.unlocked.iter().chain(found.locked.iter()) {
                item.delete().await?;
                deleted += 1;
            }
            Ok(deleted)
        })
    }
}

impl Shared {
    /// What a search that found no item means: [`Fail::NoEntry`] when the default collection,
    /// where this store writes, exists and is unlocked; otherwise why the store cannot be
    /// used ([`Fail::NoCollection`], [`Fail::Locked`]), so that an unusable keyring never
    /// looks like an empty one.
    async fn absent(&self) -> Fail {
        match self.ss.get_default_collection().await {
            Ok(collection) => match collection.is_locked().await {
                Ok(false) => Fail::NoEntry,
                Ok(true) => Fail::Locked,
                Err(e) => Fail::Ss(e),
            },
            Err(SsError::NoResult) => Fail::NoCollection,
            Err(e) => Fail::Ss(e),
        }
    }

    /// The one item of `(service, user)`, `None` if there is none.
    async fn unique_item(&self, service: &str, user: &str) -> Result<Option<Item<'_>>, Fail> {
        let attributes = HashMap::from([("service", service), ("username", user)]);
        let found = self.ss.search_items(attributes).await?;
        if !found.locked.is_empty() {
            let locked: Vec<&Item<'_>> = found.locked.iter().collect();
            self.ss.unlock_all(&locked).await?;
        }
        let mut items: Vec<Item<'_>> = found.unlocked.into_iter().chain(found.locked).collect();
        match items.len() {
            0 | 1 => Ok(items.pop()),
            n => Err(Fail::Ambiguous(n)),
        }
    }
}

impl CredentialStoreApi for SecretServiceStore {
    fn vendor(&self) -> String {
        "freedesktop Secret Service (kms-backend-keyring)".into()
    }

    fn id(&self) -> String {
        "secret-service".into()
    }

    fn build(
        &self,
        service: &str,
        user: &str,
        _: Option<&HashMap<&str, &str>>,
    ) -> keyring_core::Result<Entry> {
        Ok(Entry::new_with_credential(Arc::new(Cred {
            shared: self.0.clone(),
            service: service.to_owned(),
            user: user.to_owned(),
        })))
    }

    /// Every item whose `service` attribute is `spec["service"]` (locked ones included).
    fn search(&self, spec: &HashMap<&str, &str>) -> keyring_core::Result<Vec<Entry>> {
        let service = spec.get("service").copied().unwrap_or_default();
        let ss = &self.0.ss;
        let users = bounded("searching the Secret Service", self.0.timeout, async {
            let found = ss
                .search_items(HashMap::from([("service", service)]))
                .await?;
            let mut users = Vec::new();
            for item in found.unlocked.iter().chain(found.locked.iter()) {
                if let Some(user) = item.get_attributes().await?.remove("username") {
                    users.push(user);
                }
            }
            if users.is_empty() {
                match self.0.absent().await {
                    Fail::NoEntry => {}
                    unusable => return Err(unusable),
                }
            }
            Ok(users)
        })?;
        users
            .into_iter()
            .map(|user| self.build(service, &user, None))
            .collect()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[derive(Debug)]
struct Placeholder;

impl CredentialApi for Placeholder {
    fn set_secret(&self, _: &[u8]) -> keyring_core::Result<()> {
        Err(keyring_core::Error::NoEntry)
    }
    fn get_secret(&self) -> keyring_core::Result<Vec<u8>> {
        Err(keyring_core::Error::NoEntry)
    }
    fn delete_credential(&self) -> keyring_core::Result<()> {
        Err(keyring_core::Error::NoEntry)
    }
    fn get_credential(&self) -> keyring_core::Result<Option<Arc<Credential>>> {
        Ok(None)
    }
    fn get_specifiers(&self) -> Option<(String, String)> {
        None
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

struct Cred {
    shared: Arc<Shared>,
    service: String,
    user: String,
}

impl std::fmt::Debug for Cred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cred")
            .field("service", &self.service)
            .field("user", &self.user)
            .finish()
    }
}

impl CredentialApi for Cred {
    fn set_secret(&self, secret: &[u8]) -> keyring_core::Result<()> {
        let shared = &self.shared;
        bounded("writing a Secret Service item", shared.timeout, async {
            if let Some(item) = shared.unique_item(&self.service, &self.user).await? {
                return Ok(item.set_secret(secret, CONTENT_TYPE).await?);
            }
            let collection = match shared.ss.get_default_collection().await {
                Ok(c) => c,
                Err(SsError::NoResult) => return Err(Fail::NoCollection),
                Err(e) => return Err(Fail::Ss(e)),
            };
            if collection.is_locked().await? {
                collection.unlock().await?;
            }
            let label = format!("keyring:{}@{}", self.user, self.service);
            let attributes = HashMap::from([
                ("service", self.service.as_str()),
                ("username", self.user.as_str()),
            ]);
            collection
                .create_item(&label, attributes, secret, true, CONTENT_TYPE)
                .await?;
            Ok(())
        })
    }

    fn get_secret(&self) -> keyring_core::Result<Vec<u8>> {
        let shared = &self.shared;
        bounded("reading a Secret Service item", shared.timeout, async {
            match shared.unique_item(&self.service, &self.user).await? {
                Some(item) => Ok(item.get_secret().await?),
                None => Err(shared.absent().await),
            }
        })
    }

    fn delete_credential(&self) -> keyring_core::Result<()> {
        let shared = &self.shared;
        bounded("deleting a Secret Service item", shared.timeout, async {
            match shared.unique_item(&self.service, &self.user).await? {
                Some(item) => Ok(item.delete().await?),
                None => Err(shared.absent().await),
            }
        })
    }

    fn get_credential(&self) -> keyring_core::Result<Option<Arc<Credential>>> {
        Ok(None)
    }

    fn get_specifiers(&self) -> Option<(String, String)> {
        Some((self.service.clone(), self.user.clone()))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
