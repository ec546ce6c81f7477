//! The Linux kernel keyring (keyutils) as a `keyring_core` credential store, with an explicit
//! scope (session or persistent keyring), typed quota errors and a search by service.
//!
//! An entry `(service, name)` is a `user` key whose description is `keyring:<name>@<service>`
//! (the format of `linux-keyutils-keyring-store`, so entries written by the `keyring` crate
//! and by `keyctl` are shared). See [`KeyutilsScope`] for where keys are written and how long
//! they live; reads search the session keyring and every keyring linked into it.

use std::collections::HashMap;
use std::sync::Arc;

use keyring_core::api::{CredentialApi, CredentialPersistence, CredentialStoreApi};
use keyring_core::{Credential, Entry};
use linux_keyutils::{Key, KeyError, KeyRing, KeyRingIdentifier, KeyType, LinkNode};

use crate::KeyutilsScope;

/// The kernel keyring as a `keyring_core` credential store.
#[derive(Debug)]
pub(crate) struct KeyutilsStore {
    scope: KeyutilsScope,
}

impl KeyutilsStore {
    pub(crate) fn new(scope: KeyutilsScope) -> keyring_core::Result<Arc<Self>> {
        // Fail at build, not on first use, when there is no keyring to write to.
        target(scope)?;
        Ok(Arc::new(Self { scope }))
    }
}

/// The description of the entry `(service, user)`.
pub fn description(service: &str, user: &str) -> String {
    format!("keyring:{user}@{service}")
}

fn session() -> keyring_core::Result<KeyRing> {
    KeyRing::from_special_id(KeyRingIdentifier::Session, false).map_err(to_keyring)
}

/// The keyring new keys go to.
fn target(scope: KeyutilsScope) -> keyring_core::Result<KeyRing> {
    match scope {
        KeyutilsScope::Session => session(),
        KeyutilsScope::Persistent => {
            KeyRing::get_persistent(KeyRingIdentifier::Session).map_err(to_keyring)
        }
    }
}

/// Maps a keyutils error; quota errors keep their type for [`crate::map_error`].
pub(crate) fn to_keyring(err: KeyError) -> keyring_core::Error {
    use keyring_core::Error as K;
    match err {
        KeyError::KeyDoesNotExist | KeyError::KeyRevoked | KeyError::KeyExpired => K::NoEntry,
        KeyError::AccessDenied | KeyError::PermissionDenied => K::NoStorageAccess(Box::new(err)),
        KeyError::InvalidDescription => K::Invalid(
            "description".into(),
            "rejected by the kernel keyring".into(),
        ),
        // EINVAL: the kernel refused the arguments (a description or payload it cannot hold);
        // retrying the same call cannot succeed.
        KeyError::InvalidArguments => K::Invalid(
            "argument".into(),
            "rejected by the kernel keyring (EINVAL)".into(),
        ),
        other => K::PlatformFailure(Box::new(other)),
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
            service: service.to_owned(),
            user: user.to_owned(),
        })))
    }

    /// Every `user` key of `spec["service"]` reachable from the session keyring.
    fn search(&self, spec: &HashMap<&str, &str>) -> keyring_core::Result<Vec<Entry>> {
        let service = spec.get("service").copied().unwrap_or_default();
        let suffix = format!("@{service}");
        if self.scope == KeyutilsScope::Persistent {
            // Links the persistent keyring into the session, so the walk below reaches it.
            target(self.scope)?;
        }
        let mut found = Vec::new();
        for (_, links) in reachable_keyrings()? {
            for node in links {
                let LinkNode::Key(key) = node else { continue };
                let Ok(meta) = key.metadata() else { continue };
                if meta.get_type() != KeyType::User {
                    continue;
                }
                let user = meta
                    .get_description()
                    .strip_prefix("keyring:")
                    .and_then(|d| d.strip_suffix(suffix.as_str()));
                if let Some(user) = user {
                    found.push(Entry::new_with_credential(Arc::new(Cred {
                        scope: self.scope,
                        service: service.to_owned(),
                        user: user.to_owned(),
                    })));
                }
            }
        }
        Ok(found)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn persistence(&self) -> CredentialPersistence {
        CredentialPersistence::UntilReboot
    }
}

/// Every keyring reachable from the session keyring (itself first), at most 64.
fn reachable_keyrings() -> keyring_core::Result<Vec<(KeyRing, Vec<LinkNode>)>> {
    let mut todo = vec![session()?];
    let mut seen: Vec<(KeyRing, Vec<LinkNode>)> = Vec::new();
    while let Some(ring) = todo.pop() {
        if seen.iter().any(|(r, _)| *r == ring) || seen.len() >= 64 {
            continue;
        }
        let Ok(links) = ring.get_links(1 << 18) else {
            continue;
        };
        let links: Vec<LinkNode> = links.iter().cloned().collect();
        for node in &links {
            if let LinkNode::KeyRing(inner) = node {
                todo.push(*inner);
            }
        }
        seen.push((ring, links));
    }
    Ok(seen)
}

/// The keyring that links `key` directly.
fn holder(key: Key) -> keyring_core::Result<Option<KeyRing>> {
    Ok(reachable_keyrings()?
        .into_iter()
        .find(|(_, links)| links.iter().any(|n| *n == key))
        .map(|(ring, _)| ring))
}

#[derive(Debug)]
struct Cred {
    scope: KeyutilsScope,
    service: String,
    user: String,
}

impl Cred {
    fn description(&self) -> String {
        description(&self.service, &self.user)
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
        // An existing key is updated where it is (so a service never ends up with one copy
        // in the session and another in the persistent keyring); a new one goes to the scope.
        // (`add_key` on the keyring holding the key replaces its payload in place; unlike
        // `keyctl update` it is not limited to one page.)
        match session()?.search(&self.description()) {
            Ok(key) => {
                let ring = match holder(key)? {
                    Some(ring) => ring,
                    None => target(self.scope)?,
                };
                ring.add_key(&self.description(), secret)
                    .map_err(to_keyring)?;
                Ok(())
            }
            Err(KeyError::KeyDoesNotExist | KeyError::KeyRevoked | KeyError::KeyExpired) => {
                target(self.scope)?
                    .add_key(&self.description(), secret)
                    .map_err(to_keyring)?;
                Ok(())
            }
            Err(e) => Err(to_keyring(e)),
        }
    }

    fn get_secret(&self) -> keyring_core::Result<Vec<u8>> {
        let key = session()?.search(&self.description()).map_err(to_keyring)?;
        key.read_to_vec().map_err(to_keyring)
    }

    fn delete_credential(&self) -> keyring_core::Result<()> {
        let key = session()?.search(&self.description()).map_err(to_keyring)?;
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
