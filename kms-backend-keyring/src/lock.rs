//! The lock file that serializes index updates across stores and processes.
//!
//! An exclusive advisory lock (`flock` on Unix, `LockFileEx` on Windows, through
//! [`std::fs::File::try_lock`]) held for the whole read-modify-write of an entry and the
//! index. The wait for it is bounded: it is retried with a short back-off until the store's
//! lock timeout, then fails with [`ErrorKind::Timeout`]; a caller that left while waiting
//! ([`Cancel`]) stops the wait at once.

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
    /// caller left; [`ErrorKind::Unavailable`] when the file cannot be opened or locked.
    pub(crate) fn acquire(path: &Path, wait: Duration, cancel: &Cancel) -> Result<Self> {
        let unavailable = |e: std::io::Error| {
            Error::new(
                ErrorKind::Unavailable,
                format!(
                    "cannot lock the keyring index lock file {}: {e}",
                    path.display()
                ),
            )
            .with_backend(BACKEND)
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(unavailable)?;
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
        drop(held);
        IndexLock::acquire(&path, Duration::ZERO, &Cancel::default()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
