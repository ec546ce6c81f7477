//! Helpers shared by the integration tests, and the fixture that cleans up after them.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use keyring_core::{CredentialStore, Entry, mock};
use kms_backend_keyring::{KeyringBackend, KeyringStore};
use kms_core::{
    Capabilities, KeyName, KeyPrefix, KeyStore, Result, SecretMeta, SecretValue, StoredSecret,
};

/// A lock file unique to this test process (or to the parent named by `KMS_KEYRING_LOCK_PID`,
/// for the writer processes a test spawns) and `tag`.
pub fn lock_file(tag: &str) -> PathBuf {
    let pid =
        std::env::var("KMS_KEYRING_LOCK_PID").unwrap_or_else(|_| std::process::id().to_string());
    std::env::temp_dir().join(format!("kms-keyring-test-{pid}-{tag}.lock"))
}

/// A unique service name, so tests against a shared real keyring never collide.
pub fn unique_service(tag: &str) -> String {
    format!(
        "kms-test-{tag}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    )
}

/// Removes, on drop, every kernel key and Secret Service item of `service` and the lock file:
/// what a test created, whether it passed or panicked.
pub struct Cleanup {
    /// The service whose keys are removed.
    pub service: String,
    /// The lock file that is removed.
    pub lock_file: PathBuf,
}

impl Cleanup {
    /// Cleans up `service` and `lock_file` when dropped.
    pub fn new(service: &str, lock_file: PathBuf) -> Self {
        Self {
            service: service.to_owned(),
            lock_file,
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        purge_kernel_keys(&self.service);
        if std::env::var_os("KMS_TEST_SECRET_SERVICE").is_some() {
            let _ = std::process::Command::new("secret-tool")
                .args(["clear", "service", &self.service])
                .status();
        }
        let _ = std::fs::remove_file(&self.lock_file);
    }
}

/// The kernel keys of `service` (description `keyring:<name>@<service>`) reachable from the
/// session keyring, including the persistent keyring when it is linked there.
///
/// Walks keyring payloads (`KEYCTL_READ` on a keyring lists its serials) and reads types and
/// descriptions from `/proc/keys`: `linux-keyutils`' `get_links`/`metadata` panic on a key
/// whose description is longer than ~490 bytes, which a test may plant on purpose.
pub fn kernel_keys(service: &str) -> Vec<linux_keyutils::Key> {
    use linux_keyutils::{Key, KeySerialId};
    let table: std::collections::HashMap<i32, (String, String)> =
        std::fs::read_to_string("/proc/keys")
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let mut rest = line;
                let mut fields = Vec::new();
                for _ in 0..8 {
                    rest = rest.trim_start_matches(' ');
                    let end = rest.find(' ')?;
                    fields.push(&rest[..end]);
                    rest = &rest[end..];
                }
                let id = u32::from_str_radix(fields[0], 16).ok()? as i32;
                // Invalidated (or revoked, dead) keys stay listed until garbage collection.
                if fields[1].contains(['R', 'D', 'i']) {
                    return None;
                }
                let shown = rest.trim_start_matches(' ');
                let description = shown.rsplit_once(": ").map_or(shown, |(d, _)| d);
                Some((id, (fields[7].to_owned(), description.to_owned())))
            })
            .collect();
    let links = |ring: i32| -> Vec<i32> {
        Key::from_id(KeySerialId::new(ring))
            .read_to_vec()
            .map(|b| {
                b.chunks_exact(4)
                    .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            })
            .unwrap_or_default()
    };
    let suffix = format!("@{service}");
    // -3: the session keyring (KEY_SPEC_SESSION_KEYRING).
    let (mut todo, mut seen, mut keys) = (vec![-3], Vec::new(), Vec::new());
    while let Some(ring) = todo.pop() {
        if seen.contains(&ring) {
            continue;
        }
        seen.push(ring);
        for id in links(ring) {
            match table.get(&id) {
                Some((kind, _)) if kind == "keyring" => todo.push(id),
                Some((kind, d))
                    if kind == "user"
                        && d.starts_with("keyring:")
                        && d.ends_with(&suffix)
                        && !keys.contains(&id) =>
                {
                    keys.push(id)
                }
                _ => {}
            }
        }
    }
    keys.into_iter()
        .map(|id| Key::from_id(KeySerialId::new(id)))
        .collect()
}

/// Invalidates every kernel key of `service`.
pub fn purge_kernel_keys(service: &str) {
    for key in kernel_keys(service) {
        let _ = key.invalidate();
    }
}

/// A store that cleans up its service and lock file when dropped (for the conformance cases,
/// which take a store by value).
pub struct Cleaned {
    /// The store.
    pub store: KeyringStore,
    _cleanup: Cleanup,
}

impl Cleaned {
    /// Cleans up after `store` when dropped.
    pub fn new(store: KeyringStore) -> Self {
        let cleanup = Cleanup::new(store.service(), store.lock_file().to_owned());
        Self {
            store,
            _cleanup: cleanup,
        }
    }
}

impl std::fmt::Display for Cleaned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.store.fmt(f)
    }
}

impl std::fmt::Debug for Cleaned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.store, f)
    }
}

#[async_trait]
impl KeyStore for Cleaned {
    fn backend(&self) -> &'static str {
        self.store.backend()
    }
    fn capabilities(&self) -> Capabilities {
        self.store.capabilities()
    }
    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        self.store.get(key).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        self.store.store(key, value).await
    }
    async fn remove(&self, key: &KeyName) -> Result<()> {
        self.store.remove(key).await
    }
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        self.store.list(prefix).await
    }
    async fn health(&self) -> Result<()> {
        self.store.health().await
    }
}

/// A `KeyringStore` over `store` (a mock, usually) with the given service and lock tag.
pub fn over(store: Arc<CredentialStore>, service: &str, tag: &str) -> KeyringStore {
    KeyringStore::builder(service)
        .backend(KeyringBackend::Custom {
            store,
            max_value_len: 4096,
        })
        .lock_file(lock_file(tag))
        .build_blocking()
        .expect("a custom store always builds")
}

/// Makes the next call on the mock entry `(service, user)` fail with `err`.
pub fn inject(store: &Arc<mock::Store>, service: &str, user: &str, err: keyring_core::Error) {
    use keyring_core::api::CredentialStoreApi;
    let entry: Entry = store.build(service, user, None).unwrap();
    let cred: &mock::Cred = entry.as_any().downcast_ref().unwrap();
    cred.set_error(err);
}

/// Fails the test with a clear message unless the environment variable `var` is set.
pub fn require_env(var: &str, what: &str) {
    if std::env::var_os(var).is_none() {
        panic!(
            "{var} is not set: these tests need {what}. Run them through scripts/test, or by hand \
             under `dbus-run-session -- bash kms-backend-keyring/scripts/keyring-session.sh cargo \
             nextest run -p kms-backend-keyring`"
        );
    }
}

/// A process that holds the exclusive lock on a file and is stuck (stopped with SIGSTOP):
/// `flock(1)` sleeping with the lock (`--no-fork`: the process holding the lock is the one
/// stopped and, on drop, killed).
pub struct StuckLockHolder {
    child: std::process::Child,
}

impl StuckLockHolder {
    /// Takes the lock on `path` in a new process and stops that process.
    pub fn hold(path: &std::path::Path) -> Self {
        let child = std::process::Command::new("flock")
            .args(["--exclusive", "--no-fork"])
            .arg(path)
            .args(["sleep", "120"])
            .spawn()
            .expect("flock runs");
        let probe = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap();
        for _ in 0..500 {
            match probe.try_lock() {
                Ok(()) => {
                    probe.unlock().unwrap();
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(_) => break,
            }
        }
        assert!(probe.try_lock().is_err(), "flock never took the lock");
        let stopped = std::process::Command::new("kill")
            .args(["-STOP", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(stopped.success());
        Self { child }
    }
}

impl Drop for StuckLockHolder {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The index lock file held by a stuck process, then a FIFO at the lock path, for a store
/// made by `builder` (a real backend; the test's service and cleanup are the caller's):
///
/// - `store` and `remove` fail with `Timeout` once the lock timeout has passed (not later),
///   saying the lock file was held, marked as having changed nothing, and nothing changed;
/// - a FIFO at the lock path (opening it for writing waits for a reader for ever) is refused
///   at once with `Configuration`, long before the call's own bound, so no thread is left
///   blocked in `open`;
/// - once the holder is gone, writes work again.
///
/// Prints what each call took.
pub async fn a_stuck_lock_holder_bounds_writes(
    builder: kms_backend_keyring::KeyringStoreBuilder,
    lock: PathBuf,
) {
    use kms_core::ErrorKind;
    use std::time::{Duration, Instant};
    const LOCK_TIMEOUT: Duration = Duration::from_millis(300);
    let key = |n: &str| KeyName::new(n).unwrap();
    let value = |v: &[u8]| SecretValue::copy_from_slice(v);
    let store = builder
        .clone()
        .lock_file(&lock)
        .lock_timeout(LOCK_TIMEOUT)
        .timeout(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    store.store(&key("k"), value(b"old")).await.unwrap();
    let holder = StuckLockHolder::hold(&lock);
    for (op, result) in [
        (
            "store",
            store.store(&key("k"), value(b"new")).await.map(drop),
        ),
        (
            "store of a new key",
            store.store(&key("n"), value(b"new")).await.map(drop),
        ),
        ("remove", store.remove(&key("k")).await),
    ] {
        let e = result.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{op}: {e}");
        assert!(e.proves_not_applied(), "{op}: {e}");
        assert!(e.message().contains("lock file"), "{op}: {e}");
        assert!(!e.message().contains("  "), "{op}: {e}");
    }
    let started = Instant::now();
    let e = store.store(&key("k"), value(b"new")).await.unwrap_err();
    let took = started.elapsed();
    println!(
        "measured: store with the lock held by a stopped process -> {:?} in {took:?} (lock timeout {LOCK_TIMEOUT:?})",
        e.kind()
    );
    assert!(
        took >= LOCK_TIMEOUT && took < LOCK_TIMEOUT + Duration::from_secs(1),
        "{took:?}"
    );
    assert_eq!(
        store.get(&key("k")).await.unwrap().value.expose_secret(),
        b"old"
    );
    assert_eq!(
        store.get(&key("n")).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(store.list(&KeyPrefix::all()).await.unwrap(), vec![key("k")]);
    drop(holder);
    // A FIFO at the lock path, with bounds far away.
    let fifo = lock.with_extension("fifo");
    let _ = std::fs::remove_file(&fifo);
    let _fifo_cleanup = Cleanup::new("kms-test-unused-fifo", fifo.clone());
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let patient = builder
        .lock_file(&fifo)
        .lock_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(30))
        .build()
        .await
        .unwrap();
    for op in ["store", "remove"] {
        let started = Instant::now();
        let e = match op {
            "store" => patient.store(&key("k"), value(b"new")).await.map(drop),
            _ => patient.remove(&key("k")).await,
        }
        .unwrap_err();
        let took = started.elapsed();
        println!(
            "measured: {op} with a FIFO at the lock path -> {:?} in {took:?}",
            e.kind()
        );
        assert_eq!(e.kind(), ErrorKind::Configuration, "{op}: {e}");
        assert!(e.proves_not_applied(), "{op}: {e}");
        assert!(e.message().contains("not a regular file"), "{op}: {e}");
        assert!(took < Duration::from_secs(1), "{op} took {took:?}");
    }
    assert_eq!(
        store.get(&key("k")).await.unwrap().value.expose_secret(),
        b"old"
    );
    store.store(&key("k"), value(b"new")).await.unwrap();
    assert_eq!(
        store.get(&key("k")).await.unwrap().value.expose_secret(),
        b"new"
    );
}
