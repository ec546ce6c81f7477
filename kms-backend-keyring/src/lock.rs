//! The lock file that serializes index updates across stores and processes.
//!
//! An exclusive advisory lock (`flock` on Unix, `LockFileEx` on Windows, through
//! [`std::fs::File::try_lock`]) held for the whole read-modify-write of an entry and the
//! index. The wait for it is bounded: it is retried with a short back-off until the store's
//! lock timeout, then fails with [`ErrorKind::Timeout`]; a caller that left while waiting
//! ([`Cancel`]) stops the wait at once. Opening the file never waits for another process
//! either: a FIFO or another special file at its path (which `open` would wait on for ever)
//! is refused.
//!
//! Every error is [marked](Error::not_applied): the lock is taken before anything is written,
//! so a store or remove that could not take it changed nothing.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

use kms_core::{Error, ErrorKind, Result};

use crate::BACKEND;
use crate::offload::Cancel;

/// An exclusive lock on the index lock file, released on drop.
pub(crate) struct IndexLock {
    file: File,
}

impl IndexLock {
    /// Takes the lock on `path` (creating the file if needed), waiting at most `wait`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Timeout`] when another holder keeps the lock longer than `wait`, or the
    /// caller left; [`ErrorKind::PermissionDenied`] when the file may not be opened, is a
    /// symbolic link or belongs to another uid; [`ErrorKind::Configuration`] when the path is
    /// not a regular file (a directory, FIFO, socket or device); [`ErrorKind::Unavailable`] when it cannot
    /// be opened or locked otherwise. All of them marked [`Error::not_applied`].
    pub(crate) fn acquire(path: &Path, wait: Duration, cancel: &Cancel) -> Result<Self> {
        Self::wait_for(path, wait, cancel).map_err(Error::not_applied)
    }

    fn wait_for(path: &Path, wait: Duration, cancel: &Cancel) -> Result<Self> {
        let unavailable = |e: std::io::Error| {
            #[cfg(unix)]
            let link = e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error());
            #[cfg(not(unix))]
            let link = false;
            let kind = if link || e.kind() == std::io::ErrorKind::PermissionDenied {
                ErrorKind::PermissionDenied
            } else if matches!(
                e.kind(),
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::IsADirectory
            ) {
                ErrorKind::Configuration
            } else {
                ErrorKind::Unavailable
            };
            Error::new(
                kind,
                format!(
                    "cannot lock the keyring index lock file {}: {e}",
                    path.display()
                ),
            )
            .with_backend(BACKEND)
        };
        let file = open(path).map_err(unavailable)?;
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { file }),
                Err(TryLockError::Error(e)) => return Err(unavailable(e)),
                Err(TryLockError::WouldBlock) => {}
            }
            cancel.check(&format!(
                "waiting for the keyring index lock file {}",
                path.display()
            ))?;
            if start.elapsed() >= wait {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "the keyring index lock file {} was held by another store or process \
                         for longer than the lock timeout ({wait:?}); nothing was written",
                        path.display()
                    ),
                )
                .with_backend(BACKEND));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

/// Opens (creating, mode 0600) the lock file. On Unix it never follows a symbolic link,
/// never blocks (`O_NONBLOCK`: opening a FIFO for writing would wait for a reader for ever;
/// without one it fails with `ENXIO`), and refuses a file that another uid owns or that is
/// not a regular file: in a shared directory such as `/tmp` (the default when
/// `XDG_RUNTIME_DIR` is unset) another user could otherwise plant a link that makes this
/// process create files elsewhere, a FIFO that stops every write, or a lock file of their own
/// that they hold for ever.
fn open(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use rustix::fs::OFlags;
        use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
        options
            .mode(0o600)
            .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32);
        let file = options.open(path).map_err(|e| {
            if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) {
                not_a_file()
            } else {
                e
            }
        })?;
        let meta = file.metadata()?;
        let owner = meta.uid();
        let me = rustix::process::geteuid().as_raw();
        if owner != me {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "it is owned by uid {owner}, not by this process's uid {me}; remove it or \
                     choose another lock file (KeyringStoreBuilder::lock_file)"
                ),
            ));
        }
        if !meta.file_type().is_file() {
            return Err(not_a_file());
        }
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}

/// The error of a lock path that is not a regular file.
#[cfg(unix)]
fn not_a_file() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        "it is not a regular file (a FIFO, socket or device); remove it or choose another lock \
         file (KeyringStoreBuilder::lock_file)",
    )
}

impl Drop for IndexLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlock explicitly to release it promptly.
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_times_out_and_a_cancelled_wait_stops() {
        let dir = std::env::temp_dir().join(format!("kms-lock-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.lock");
        let held = IndexLock::acquire(&path, Duration::ZERO, &Cancel::default()).unwrap();
        let e = match IndexLock::acquire(&path, Duration::from_millis(30), &Cancel::default()) {
            Err(e) => e,
            Ok(_) => panic!("a held lock was taken twice"),
        };
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        assert!(e.message().contains("lock timeout"), "{e}");
        assert!(e.proves_not_applied(), "nothing was written: {e}");
        drop(held);
        IndexLock::acquire(&path, Duration::ZERO, &Cancel::default()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A lock file planted by someone else in a shared directory: a symbolic link is not
    /// followed (nothing is created where it points), a file of another uid is refused, both
    /// with `PermissionDenied` naming the file; a new lock file is private (0600).
    #[cfg(unix)]
    #[test]
    fn a_planted_link_or_foreign_lock_file_is_refused() {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let dir = std::env::temp_dir().join(format!("kms-lock-planted-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.lock");
        let elsewhere = dir.join("created-through-the-link");
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        let e = match IndexLock::acquire(&path, Duration::ZERO, &Cancel::default()) {
            Err(e) => e,
            Ok(_) => panic!("a symbolic link was followed"),
        };
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        assert!(e.message().contains("x.lock"), "{e}");
        assert!(e.proves_not_applied(), "{e}");
        assert!(!elsewhere.exists(), "the link was followed");
        std::fs::remove_file(&path).unwrap();
        drop(IndexLock::acquire(&path, Duration::ZERO, &Cancel::default()).unwrap());
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        if rustix::process::geteuid().is_root() {
            // Another uid's file (only root can make one here).
            std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
            let e = match IndexLock::acquire(&path, Duration::ZERO, &Cancel::default()) {
                Err(e) => e,
                Ok(_) => panic!("another uid's lock file was used"),
            };
            assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
            assert!(e.message().contains("owned by uid 65534"), "{e}");
        } else {
            assert_eq!(meta.uid(), rustix::process::geteuid().as_raw());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
