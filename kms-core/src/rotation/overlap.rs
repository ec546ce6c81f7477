//! [`Overlap`]: the current and the previous value of a key, read together.

use crate::error::{Error, ErrorKind, Result};
use crate::key_name::KeyName;
use crate::secret::StoredSecret;
use crate::store::{KeyStore, PreviousVersion};

/// How many lower version numbers [`Overlap::read`] tries on a store with sequential
/// versions before it says there is no previous version: deleted and destroyed versions are
/// skipped, one read each.
pub const MAX_SKIPPED_VERSIONS: u64 = 10;

/// How many times [`Overlap::read`] reads again when a rotation lands between its two reads
/// (on a store that names the previous version by a label).
const ATTEMPTS: usize = 3;

/// The current and the previous version of a key: what a verifier accepts during a rotation's
/// grace period (tokens signed with either key), and what an alternating-users scheme reads.
///
/// ```
/// use kms_core::rotation::{Overlap, Rotation};
/// use kms_core::{KeyName, KeyStoreExt, MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), kms_core::Error> {
/// let store = MemoryStore::new();
/// store.put("jwt/signing", "first").await?;
/// let key = KeyName::new("jwt/signing")?;
/// assert!(Overlap::read(&store, &key).await?.previous.is_none());
/// Rotation::new().run(&store, &key).await?;
/// let both = Overlap::read(&store, &key).await?;
/// assert_eq!(both.previous.unwrap().value.expose_str()?, "first");
/// assert_eq!(both.current.meta.version.as_deref(), Some("2"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Overlap {
    /// The current version, as [`get`](KeyStore::get) returns it (through a cache, the
    /// cached one).
    pub current: StoredSecret,
    /// The version before it, if the store still has one.
    pub previous: Option<StoredSecret>,
}

impl Overlap {
    /// Reads the current version of `key` and the one before it, with the store's own
    /// [`get`](KeyStore::get) and [`get_version`](KeyStore::get_version), so it works through
    /// every decorator. How the previous version is found is the store's
    /// [`Capabilities::previous_version`](crate::Capabilities::previous_version):
    ///
    /// - [`PreviousVersion::Sequential`] (memory, Vault KV v2): the highest version number
    ///   below the current one that is still readable; deleted or destroyed versions are
    ///   skipped, up to [`MAX_SKIPPED_VERSIONS`]. The pair is exact: the previous version is
    ///   the one before the current version read.
    /// - [`PreviousVersion::Label`] (AWS Secrets Manager, `AWSPREVIOUS`): the version that
    ///   carries the label. If a rotation lands between the two reads (the previous version
    ///   read is the current one read), both are read again, up to three times.
    ///
    /// `previous` is `None` when the key has a single version (or every earlier one is
    /// deleted).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] on stores without versions (the OS keyring, Vault KV v1),
    /// before any I/O; what `get` and `get_version` return (a missing key is
    /// [`ErrorKind::NotFound`]); [`ErrorKind::Conflict`] if rotations kept landing between
    /// the reads of a labelled store (through a cache, the cached current version may be
    /// older than the backend's `AWSPREVIOUS` until the cache reloads it);
    /// [`ErrorKind::InvalidData`] if a sequential store's current version id is not a number.
    pub async fn read<S>(store: &S, key: &KeyName) -> Result<Self>
    where
        S: KeyStore + ?Sized,
    {
        let caps = store.capabilities();
        match caps.previous_version {
            PreviousVersion::Sequential if caps.versions => Self::sequential(store, key).await,
            PreviousVersion::Label(label) if caps.versions => {
                Self::labelled(store, key, label).await
            }
            _ => Err(Error::unsupported(format!(
                "reading the previous version of a key (overlap) on {store}, which keeps no \
                 versions,"
            ))
            .with_backend(store.backend())
            .before_backend()),
        }
    }

    async fn sequential<S>(store: &S, key: &KeyName) -> Result<Self>
    where
        S: KeyStore + ?Sized,
    {
        let current = store.get(key).await?;
        let number = current
            .meta
            .version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidData,
                    format!("key '{key}': the current version has no version number"),
                )
                .with_backend(store.backend())
            })?;
        let lowest = number.saturating_sub(MAX_SKIPPED_VERSIONS).max(1);
        let mut previous = None;
        for n in (lowest..number).rev() {
            match store.get_version(key, &n.to_string()).await {
                Ok(found) => {
                    previous = Some(found);
                    break;
                }
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(Self { current, previous })
    }

    async fn labelled<S>(store: &S, key: &KeyName, label: &str) -> Result<Self>
    where
        S: KeyStore + ?Sized,
    {
        for _ in 0..ATTEMPTS {
            let current = store.get(key).await?;
            let previous = match store.get_version(key, label).await {
                Ok(found) => Some(found),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            };
            let moved = previous.as_ref().is_some_and(|p| {
                p.meta.version.is_some() && p.meta.version == current.meta.version
            });
            if !moved {
                return Ok(Self { current, previous });
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "key '{key}': the version read as current kept coming back as {label} (rotated \
                 while reading, or a cache holds the replaced version); read again later"
            ),
        )
        .with_backend(store.backend()))
    }

    /// The current and (if any) previous values, newest first: what a verifier tries in turn.
    pub fn values(&self) -> impl Iterator<Item = &StoredSecret> {
        std::iter::once(&self.current).chain(self.previous.as_ref())
    }
}
