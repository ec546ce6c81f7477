//! [`KeyutilsStore`]: the kernel keyring as a `keyring_core` credential store (the format and
//! scope are described on the [module](super)).

use std::collections::HashMap;
use std::sync::Arc;

use keyring_core::api::{CredentialApi, CredentialPersistence, CredentialStoreApi};
use keyring_core::{Credential, Entry};
use linux_keyutils::{Key, KeyError, KeyRing, KeyRingIdentifier, KeySerialId};

use super::key_error::{ring_error, to_keyring};
use super::{owner, walk};
use crate::{KeyutilsAccess, KeyutilsScope};

/// The kernel keyring as a `keyring_core` credential store.
#[derive(Debug)]
pub(crate) struct KeyutilsStore {
    scope: KeyutilsScope,
    access: KeyutilsAccess,
}

impl KeyutilsStore {
    pub(crate) fn new(
        scope: KeyutilsScope,
        access: KeyutilsAccess,
    ) -> keyring_core::Result<Arc<Self>> {
        // Fail at build, not on first use, when there is no keyring to write to.
        target(scope)?;
        check_session()?;
        Ok(Arc::new(Self { scope, access }))
    }
}

/// The description of the entry `(service, user)`.
pub fn description(service: &str, user: &str) -> String {
    format!("keyring:{user}@{service}")
}

const SESSION_NAME: &str = "the session keyring";
const PERSISTENT_NAME: &str = "the persistent keyring";

fn session() -> keyring_core::Result<KeyRing> {
    KeyRing::from_special_id(KeyRingIdentifier::Session, false)
        .map_err(|e| ring_error(SESSION_NAME, e))
}

/// The keyring new keys go to.
fn target(scope: KeyutilsScope) -> keyring_core::Result<KeyRing> {
    match scope {
        KeyutilsScope::Session => session(),
        KeyutilsScope::Persistent => KeyRing::get_persistent(KeyRingIdentifier::Session)
            .map_err(|e| ring_error(PERSISTENT_NAME, e)),
    }
}

/// Fails unless the session keyring can be read: it exists and is not revoked, expired or
/// invalidated.
fn check_session() -> keyring_core::Result<()> {
    Key::from_id(KeySerialId::new(walk::SESSION))
        .read_to_vec()
        .map(drop)
        .map_err(|e| ring_error(SESSION_NAME, e))
}

/// Searches the session keyring (and every keyring linked into it) for `description`.
///
/// The kernel answers a search of a keyring that is itself gone, revoked or expired with the
/// same errors as a search that found no live key; a miss therefore counts as "no such entry"
/// only once the session keyring has been read, so that an unusable keyring is never taken
/// for an empty one.
fn find(description: &str) -> keyring_core::Result<Key> {
    match session()?.search(description) {
        Ok(key) => Ok(key),
        Err(e @ (KeyError::KeyDoesNotExist | KeyError::KeyRevoked | KeyError::KeyExpired)) => {
            check_session()?;
            Err(to_keyring(e))
        }
        Err(e) => Err(ring_error(SESSION_NAME, e)),
    }
}

impl CredentialStoreApi for KeyutilsStore {
    fn vendor(&self) -> String {
        "Linux kernel keyring (kms-backend-keyring)".into()
    }

    fn id(&self) -> String {
        format!("keyutils-{:?}", self.scope)
    }

    fn build(
        &self,
        service: &str,
        user: &str,
        _: Option<&HashMap<&str, &str>>,
    ) -> keyring_core::Result<Entry> {
        Ok(Entry::new_with_credential(Arc::new(Cred {
            scope: self.scope,
            access: self.access,
            service: service.to_owned(),
            user: user.to_owned(),
        })))
    }

    /// Every `user` key of `spec["service"]` reachable from the session keyring (with
    /// [`KeyutilsAccess::Uid`], only the keys this process's uid owns).
    fn search(&self, spec: &HashMap<&str, &str>) -> keyring_core::Result<Vec<Entry>> {
        let service = spec.get("service").copied().unwrap_or_default();
        let suffix = format!("@{service}");
        if self.scope == KeyutilsScope::Persistent {
            // Links the persistent keyring into the session, so the walk below reaches it.
            target(self.scope)?;
        }
        let (rings, table) = walk::reachable()?;
        let me = owner::my_uid();
        let mut found: Vec<String> = Vec::new();
        for (_, links) in rings {
            for id in links {
                let Some(key) = table.get(&id).filter(|d| {
                    d.kind == "user"
                        && d.live
                        && (self.access == KeyutilsAccess::Possessor || d.uid == me)
                }) else {
                    continue;
                };
                let user = key
                    .description
                    .strip_prefix("keyring:")
                    .and_then(|d| d.strip_suffix(suffix.as_str()));
                if let Some(user) = user
                    && !found.iter().any(|f| f == user)
                {
                    found.push(user.to_owned());
                }
            }
        }
        Ok(found
            .into_iter()
            .map(|user| {
                Entry::new_with_credential(Arc::new(Cred {
                    scope: self.scope,
                    access: self.access,
                    service: service.to_owned(),
                    user,
                }))
            })
            .collect())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn persistence(&self) -> CredentialPersistence {
        CredentialPersistence::UntilReboot
    }
}

/// The keyring that links `key` directly, among the ones this process can name: the session
/// keyring, the uid's persistent, user and user-session keyrings. `None` if it is none of them
/// (or cannot be found).
fn holder(key: Key) -> keyring_core::Result<Option<KeyRing>> {
    let id = key.get_id().as_raw_id();
    if walk::links(walk::SESSION).contains(&id) {
        return session().map(Some);
    }
    // Without /proc/keys (not mounted) the key is written to the scope's keyring instead.
    let Ok((rings, table)) = walk::reachable() else {
        return Ok(None);
    };
    let Some(ring) = rings
        .iter()
        .find(|(_, links)| links.contains(&id))
        .map(|(ring, _)| *ring)
    else {
        return Ok(None);
    };
    if ring == walk::SESSION {
        return session().map(Some);
    }
    let name = table
        .get(&ring)
        .map(|d| d.description.as_str())
        .unwrap_or("");
    let special = if name.starts_with("_persistent.") {
        KeyRing::get_persistent(KeyRingIdentifier::Session)
    } else if name.starts_with("_uid_ses.") {
        KeyRing::from_special_id(KeyRingIdentifier::UserSession, false)
    } else if name.starts_with("_uid.") {
        KeyRing::from_special_id(KeyRingIdentifier::User, false)
    } else {
        return Ok(None);
    };
    Ok(special.ok())
}

#[derive(Debug)]
struct Cred {
    scope: KeyutilsScope,
    access: KeyutilsAccess,
    service: String,
    user: String,
}

impl Cred {
    fn description(&self) -> String {
        description(&self.service, &self.user)
    }

    fn scope_name(&self) -> &'static str {
        match self.scope {
            KeyutilsScope::Session => SESSION_NAME,
            KeyutilsScope::Persistent => PERSISTENT_NAME,
        }
    }
}

impl CredentialApi for Cred {
    fn set_secret(&self, secret: &[u8]) -> keyring_core::Result<()> {
        if secret.is_empty() {
            return Err(keyring_core::Error::Invalid(
                "secret".into(),
                "cannot be empty".into(),
            ));
        }
        let description = self.description();
        if self.scope == KeyutilsScope::Persistent {
            // Links the persistent keyring into the session, so the search below sees a key
            // there before `add_key` would replace it unseen.
            target(self.scope)?;
        }
        // An existing key is updated where it is (so a service never ends up with one copy
        // in the session and another in the persistent keyring); a new one goes to the scope.
        // (`add_key` on the keyring holding the key replaces its payload in place; unlike
        // `keyctl update` it is not limited to one page.)
        match find(&description) {
            Ok(key) => {
                if self.access == KeyutilsAccess::Uid {
                    // Another uid's key is left alone; ours loses its possessor rights before
                    // it holds the new value.
                    let perm = owner::check_owner(key, &description)?;
                    let wanted = owner::possessor_to_uid(perm);
                    if wanted != perm {
                        owner::set_perm(key, wanted)?;
                    }
                }
                let ring = match holder(key)? {
                    Some(ring) => ring,
                    None => target(self.scope)?,
                };
                ring.add_key(&description, secret)
                    .map_err(|e| ring_error("the keyring holding the key", e))?;
                Ok(())
            }
            Err(keyring_core::Error::NoEntry) => {
                let key = target(self.scope)?
                    .add_key(&description, secret)
                    .map_err(|e| ring_error(self.scope_name(), e))?;
                if self.access == KeyutilsAccess::Uid
                    && let Err(e) = owner::set_perm(key, owner::UID_ONLY)
                {
                    // Never leave a new key readable by possessors of other uids.
                    let _ = key.invalidate();
                    return Err(e);
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn get_secret(&self) -> keyring_core::Result<Vec<u8>> {
        let description = self.description();
        let key = find(&description)?;
        if self.access == KeyutilsAccess::Uid {
            owner::check_owner(key, &description)?;
        }
        key.read_to_vec().map_err(to_keyring)
    }

    fn delete_credential(&self) -> keyring_core::Result<()> {
        let description = self.description();
        let key = find(&description)?;
        if self.access == KeyutilsAccess::Uid {
            owner::check_owner(key, &description)?;
        }
        key.invalidate().map_err(to_keyring)
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
