//! The real Secret Service (gnome-keyring-daemon over D-Bus). Needs an unlocked daemon on the
//! session bus: scripts/test provides one through kms-backend-keyring/scripts/keyring-session.sh
//! and sets `KMS_TEST_SECRET_SERVICE`. Fails, never skips, without it.

mod common;

use std::process::Command;

use std::time::{Duration, Instant};

use common::{
    Cleaned, Cleanup, a_stuck_lock_holder_bounds_writes, lock_file, require_env, unique_service,
};
use kms_backend_keyring::{INDEX_ACCOUNT, KeyringBackend, KeyringStore};
use kms_core::{ErrorKind, KeyName, KeyPrefix, KeyStore, SecretValue};

fn secret_service(service: &str, tag: &str) -> KeyringStore {
    require_env(
        "KMS_TEST_SECRET_SERVICE",
        "an unlocked Secret Service (gnome-keyring-daemon) on a D-Bus session",
    );
    KeyringStore::builder(service)
        .backend(KeyringBackend::SecretService)
        .lock_file(lock_file(tag))
        .build_blocking()
        .expect("the Secret Service store opens")
}

/// A store over a new service, and the fixture that removes its items and lock file.
fn fresh(tag: &str) -> (KeyringStore, Cleanup) {
    let store = secret_service(&unique_service(tag), tag);
    let cleanup = Cleanup::new(store.service(), lock_file(tag));
    (store, cleanup)
}

mod conformance_secret_service {
    use super::*;
    kms_core::conformance_tests!(Cleaned::new(fresh("conformance").0));
}

fn key(name: &str) -> KeyName {
    KeyName::new(name).unwrap()
}

fn value(bytes: &[u8]) -> SecretValue {
    SecretValue::copy_from_slice(bytes)
}

/// `secret-tool store --label=<label> attr value…` with `secret` on stdin.
fn secret_tool_store(attributes: &[&str], secret: &[u8]) {
    use std::io::Write;
    let mut child = Command::new("secret-tool")
        .arg("store")
        .arg("--label=kms test")
        .args(attributes)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("secret-tool runs");
    child.stdin.take().unwrap().write_all(secret).unwrap();
    assert!(
        child.wait().unwrap().success(),
        "secret-tool store {attributes:?}"
    );
}

#[tokio::test]
async fn a_value_stored_from_rust_is_read_by_secret_tool() {
    let (store, _cleanup) = fresh("interop-out");
    let key = KeyName::new("app/token").unwrap();
    store
        .store(&key, SecretValue::copy_from_slice(b"tok-123"))
        .await
        .unwrap();
    let out = Command::new("secret-tool")
        .args([
            "lookup",
            "service",
            store.service(),
            "username",
            "app/token",
        ])
        .output()
        .expect("secret-tool runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"tok-123");
    store.remove(&key).await.unwrap();
}

#[tokio::test]
async fn a_value_stored_by_secret_tool_is_read_from_rust() {
    // The README's entry format, used from outside.
    let (store, _cleanup) = fresh("interop-in");
    secret_tool_store(
        &["service", store.service(), "username", "from/cli"],
        b"cli-value",
    );
    let key = KeyName::new("from/cli").unwrap();
    assert_eq!(
        store.get(&key).await.unwrap().value.expose_secret(),
        b"cli-value"
    );
    // Not stored through the store, so not in its index.
    assert!(store.list(&KeyPrefix::all()).await.unwrap().is_empty());
}

/// Without a reachable D-Bus session the store does not open, with `Unavailable` and a message
/// that says why. Runs the check in a child (this binary, re-run with `KMS_KEYRING_NO_DBUS=1`
/// and a session bus address that points nowhere), since the environment is per process.
#[test]
fn no_dbus_session_is_unavailable_with_a_clear_message() {
    if std::env::var_os("KMS_KEYRING_NO_DBUS").is_some() {
        let err = KeyringStore::builder("kms-test-no-dbus")
            .backend(KeyringBackend::SecretService)
            .build_blocking()
            .unwrap_err();
        assert_eq!(err.kind(), kms_core::ErrorKind::Unavailable, "{err}");
        assert!(
            err.message().contains("opening the secret-service keyring"),
            "{err}"
        );
        assert!(err.message().contains("D-Bus"), "{err}");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "no_dbus_session_is_unavailable_with_a_clear_message",
            "--exact",
        ])
        .env("KMS_KEYRING_NO_DBUS", "1")
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/kms-test-bus",
        )
        .output()
        .expect("the test binary re-runs itself");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
}

/// A second index item (written by another program) makes the index
/// ambiguous. It used to fail every later store with Conflict for good; now it is a corrupt
/// index: `list` and `health` say so (InvalidData), and the next store deletes both items and
/// rebuilds the index from the service's items, then writes its value.
#[tokio::test]
async fn a_second_index_item_is_a_corrupt_index_rebuilt_by_the_next_store() {
    let (store, _cleanup) = fresh("two-index");
    store.store(&key("a/1"), value(b"old")).await.unwrap();
    secret_tool_store(
        &[
            "service",
            store.service(),
            "username",
            INDEX_ACCOUNT,
            "copy",
            "2",
        ],
        b"{\"v\":1,\"names\":[]}",
    );
    let e = store.list(&KeyPrefix::all()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
    assert!(
        e.message().contains("more than one") && e.message().contains("rebuilds"),
        "{e}"
    );
    let e = store.health().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
    store.store(&key("a/2"), value(b"dos")).await.unwrap();
    assert_eq!(
        store.list(&KeyPrefix::all()).await.unwrap(),
        vec![key("a/1"), key("a/2")]
    );
    store.health().await.unwrap();
    store.store(&key("a/1"), value(b"uno")).await.unwrap();
    assert_eq!(
        store.get(&key("a/1")).await.unwrap().value.expose_secret(),
        b"uno"
    );
}

/// On the Secret Service, the value write failing: two items already match
/// the new key, so writing it is ambiguous; the name added to the index is taken out again.
#[tokio::test]
async fn a_failed_value_write_takes_the_name_out_of_the_index_again() {
    let (store, _cleanup) = fresh("two-values");
    store.store(&key("a/1"), value(b"one")).await.unwrap();
    for copy in ["1", "2"] {
        secret_tool_store(
            &[
                "service",
                store.service(),
                "username",
                "n/new",
                "copy",
                copy,
            ],
            b"by hand",
        );
    }
    let e = store
        .store(&key("n/new"), value(b"mine"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert_eq!(
        store.list(&KeyPrefix::all()).await.unwrap(),
        vec![key("a/1")]
    );
}

/// On the Secret Service: garbage in the index; `health` and `list` report it,
/// and the next store rebuilds the index from every item with the service attribute.
#[tokio::test]
async fn a_corrupt_index_is_rebuilt_from_the_service_items() {
    let (store, _cleanup) = fresh("corrupt");
    store.store(&key("a/1"), value(b"1")).await.unwrap();
    store.store(&key("a/2"), value(b"2")).await.unwrap();
    secret_tool_store(
        &["service", store.service(), "username", INDEX_ACCOUNT],
        b"garbage",
    );
    assert_eq!(
        store.list(&KeyPrefix::all()).await.unwrap_err().kind(),
        ErrorKind::InvalidData
    );
    assert_eq!(
        store.health().await.unwrap_err().kind(),
        ErrorKind::InvalidData
    );
    store.store(&key("a/3"), value(b"3")).await.unwrap();
    assert_eq!(
        store.list(&KeyPrefix::all()).await.unwrap(),
        vec![key("a/1"), key("a/2"), key("a/3")]
    );
    store.health().await.unwrap();
}

/// The gnome-keyring-daemon of a private session (see scripts/keyring-session.sh).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Daemon {
    /// Started with an unlocked login keyring (the default collection).
    Unlocked,
    /// Started without a login keyring: no default collection.
    NoLoginCollection,
    /// Not started: D-Bus starts one from its service file on the first client call, as on a
    /// machine where nobody logged in to a desktop.
    AutoStarted,
}

/// Runs this binary's test `test` (exactly) inside a private D-Bus session with its own
/// gnome-keyring-daemon, with `KMS_KEYRING_CHILD=1` so that the test runs its child half.
fn in_private_session(test: &str, daemon: Daemon) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/keyring-session.sh");
    let mut cmd = Command::new("dbus-run-session");
    cmd.args(["--", "bash", script])
        .arg(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture"])
        .env("KMS_KEYRING_CHILD", "1");
    match daemon {
        Daemon::Unlocked => {}
        Daemon::NoLoginCollection => {
            cmd.env("KMS_KEYRING_NO_LOGIN_COLLECTION", "1");
        }
        Daemon::AutoStarted => {
            cmd.env("KMS_KEYRING_AUTOSTART", "1");
        }
    }
    let out = cmd.output().expect("dbus-run-session runs");
    // What the child measured (lines starting with "measured:"), for the test's own output.
    for line in String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .filter(|l| l.starts_with("measured:"))
    {
        println!("{line}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_child() -> bool {
    std::env::var_os("KMS_KEYRING_CHILD").is_some()
}

/// A Secret Service without a login (default) collection: `health` fails with
/// a message that says what to set up, and so does a store.
#[test]
fn no_login_collection_fails_health_with_what_to_set_up() {
    if !is_child() {
        require_env(
            "KMS_TEST_SECRET_SERVICE",
            "gnome-keyring-daemon and dbus-run-session",
        );
        return in_private_session(
            "no_login_collection_fails_health_with_what_to_set_up",
            Daemon::NoLoginCollection,
        );
    }
    futures_lite::future::block_on(async {
        let service = unique_service("no-login");
        let _cleanup = Cleanup::new(&service, lock_file("no-login"));
        let store = KeyringStore::builder(&service)
            .backend(KeyringBackend::SecretService)
            .lock_file(lock_file("no-login"))
            .build()
            .await
            .unwrap();
        let e = store.health().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(
            e.message().contains("no default collection")
                && e.message().contains("gnome-keyring-daemon --unlock"),
            "{e}"
        );
        let e = store.store(&key("k"), value(b"v")).await.unwrap_err();
        assert!(e.message().contains("login"), "{e}");
        // Nothing can be stored, so nothing can be said to be missing: never an empty list
        // or NotFound.
        unusable_everywhere(&store, "no default collection").await;
    });
}

/// Every operation of `store`, whose keyring cannot be used, fails with `Unavailable` saying
/// `why` (never `NotFound`, never an empty list), in far less than the timeout; the failed
/// writes are marked as having changed nothing. Prints what each call took.
async fn unusable_everywhere(store: &KeyringStore, why: &str) {
    let check = |op: &str, e: kms_core::Error, took: Duration| {
        println!("measured: {op} -> {:?} in {took:?}", e.kind());
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{op}: {e}");
        assert!(e.message().contains(why), "{op}: {e}");
        assert!(!e.message().contains("  "), "{op}: {e}");
        assert!(took < Duration::from_secs(2), "{op} took {took:?}");
    };
    let timed = Instant::now();
    let e = store.get(&key("k")).await.unwrap_err();
    check("get", e, timed.elapsed());
    let timed = Instant::now();
    let e = store.get(&key("never/stored")).await.unwrap_err();
    check("get of a key never stored", e, timed.elapsed());
    let timed = Instant::now();
    let e = store.list(&KeyPrefix::all()).await.unwrap_err();
    check("list", e, timed.elapsed());
    let timed = Instant::now();
    let e = store.remove(&key("never/stored")).await.unwrap_err();
    assert!(e.proves_not_applied(), "{e}");
    check("remove", e, timed.elapsed());
    let timed = Instant::now();
    let e = store.store(&key("new"), value(b"v")).await.unwrap_err();
    assert!(e.proves_not_applied(), "{e}");
    check("store", e, timed.elapsed());
    let timed = Instant::now();
    let e = store.health().await.unwrap_err();
    check("health", e, timed.elapsed());
}

/// A Secret Service that D-Bus starts on the first call (no desktop login: no unlocked login
/// collection) is `Unavailable` for every operation, saying what to set up; `get` used to
/// answer `NotFound` and `list` an empty list, as if the store were empty.
#[test]
fn an_auto_started_daemon_without_an_unlocked_collection_is_unavailable_never_empty() {
    const TEST: &str =
        "an_auto_started_daemon_without_an_unlocked_collection_is_unavailable_never_empty";
    if !is_child() {
        require_env(
            "KMS_TEST_SECRET_SERVICE",
            "gnome-keyring-daemon and dbus-run-session",
        );
        return in_private_session(TEST, Daemon::AutoStarted);
    }
    futures_lite::future::block_on(async {
        let service = unique_service("autostart");
        let _cleanup = Cleanup::new(&service, lock_file("autostart"));
        let store = KeyringStore::builder(&service)
            .backend(KeyringBackend::SecretService)
            .lock_file(lock_file("autostart"))
            .build()
            .await
            .expect("the auto-started daemon answers");
        unusable_everywhere(&store, "no default collection").await;
        let e = store.health().await.unwrap_err();
        assert!(e.message().contains("gnome-keyring-daemon --unlock"), "{e}");
    });
}

/// The default collection locked after the store wrote a key (`Lock` over D-Bus, as a screen
/// locker does): every operation is `Unavailable`, for the key that exists and for one that
/// does not alike; a key that is not there is not reported missing while the collection
/// cannot be read.
#[test]
fn a_locked_collection_is_unavailable_never_not_found() {
    if !is_child() {
        require_env(
            "KMS_TEST_SECRET_SERVICE",
            "gnome-keyring-daemon and dbus-run-session",
        );
        return in_private_session(
            "a_locked_collection_is_unavailable_never_not_found",
            Daemon::Unlocked,
        );
    }
    futures_lite::future::block_on(async {
        let service = unique_service("locked");
        let _cleanup = Cleanup::new(&service, lock_file("locked"));
        let store = KeyringStore::builder(&service)
            .backend(KeyringBackend::SecretService)
            .lock_file(lock_file("locked"))
            .build()
            .await
            .unwrap();
        store.store(&key("k"), value(b"v")).await.unwrap();
        let out = Command::new("dbus-send")
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.secrets",
                "/org/freedesktop/secrets",
                "org.freedesktop.Secret.Service.Lock",
                "array:objpath:/org/freedesktop/secrets/collection/login",
            ])
            .output()
            .expect("dbus-send runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        unusable_everywhere(&store, "locked").await;
    });
}

/// The daemon is stopped (SIGSTOP) after build. Every call fails with
/// Timeout/Unavailable after the configured timeout, concurrent calls do not queue behind one
/// another, and the store works again once the daemon continues.
#[test]
fn a_stopped_daemon_makes_every_call_time_out_without_queueing() {
    if !is_child() {
        require_env(
            "KMS_TEST_SECRET_SERVICE",
            "gnome-keyring-daemon and dbus-run-session",
        );
        return in_private_session(
            "a_stopped_daemon_makes_every_call_time_out_without_queueing",
            Daemon::Unlocked,
        );
    }
    let pid = std::env::var("KMS_TEST_SECRET_SERVICE_PID").expect("the daemon's pid");
    let signal = |sig: &str| {
        assert!(
            Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    futures_lite::future::block_on(async {
        let service = unique_service("sigstop");
        let _cleanup = Cleanup::new(&service, lock_file("sigstop"));
        let store = KeyringStore::builder(&service)
            .backend(KeyringBackend::SecretService)
            .lock_file(lock_file("sigstop"))
            .timeout(Duration::from_millis(500))
            .lock_timeout(Duration::from_millis(500))
            .build()
            .await
            .unwrap();
        store.store(&key("k"), value(b"v")).await.unwrap();
        signal("-STOP");
        let started = Instant::now();
        let (health, get, stored, listed, removed) = futures_lite::future::zip(
            futures_lite::future::zip(store.health(), store.get(&key("k"))),
            futures_lite::future::zip(
                store.store(&key("k"), value(b"w")),
                futures_lite::future::zip(store.list(&KeyPrefix::all()), store.remove(&key("k"))),
            ),
        )
        .await
        .into_flat();
        let elapsed = started.elapsed();
        signal("-CONT");
        for e in [
            health.unwrap_err(),
            get.unwrap_err(),
            stored.unwrap_err(),
            listed.unwrap_err(),
            removed.unwrap_err(),
        ] {
            // A bound that ran out (a D-Bus call, the lock wait or the whole call) is always
            // a Timeout.
            assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        }
        // Five calls of at most ~1 s each ran side by side, not one after another.
        assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
        // The daemon answers again: so does the store (the abandoned writes may have landed).
        let mut ok = false;
        for _ in 0..50 {
            if store.health().await.is_ok() && store.get(&key("k")).await.is_ok() {
                ok = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(ok, "the store recovers once the daemon continues");
    });
}

/// The daemon stopped (SIGSTOP) after build, each operation alone: every one, `remove`
/// included, fails with `Timeout` within its bound (the timeout, or the lock wait plus the
/// timeout for writes) instead of hanging; the writes, whose first D-Bus call (reading the
/// index) did not answer, are marked as having changed nothing. More calls than
/// `max_abandoned_calls` in a row all time out the same way, so no call leaves a thread stuck
/// behind it: each D-Bus call inside is bounded too. `build` against the stopped daemon times
/// out as well. Prints what each call took.
#[test]
fn a_stopped_daemon_bounds_every_call_remove_included() {
    const TEST: &str = "a_stopped_daemon_bounds_every_call_remove_included";
    if !is_child() {
        require_env(
            "KMS_TEST_SECRET_SERVICE",
            "gnome-keyring-daemon and dbus-run-session",
        );
        return in_private_session(TEST, Daemon::Unlocked);
    }
    let pid = std::env::var("KMS_TEST_SECRET_SERVICE_PID").expect("the daemon's pid");
    let signal = |sig: &str| {
        assert!(
            Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    const TIMEOUT: Duration = Duration::from_millis(500);
    const LOCK_TIMEOUT: Duration = Duration::from_millis(300);
    futures_lite::future::block_on(async {
        let service = unique_service("sigstop-each");
        let _cleanup = Cleanup::new(&service, lock_file("sigstop-each"));
        let builder = KeyringStore::builder(&service)
            .backend(KeyringBackend::SecretService)
            .lock_file(lock_file("sigstop-each"))
            .timeout(TIMEOUT)
            .lock_timeout(LOCK_TIMEOUT)
            .max_abandoned_calls(2);
        let store = builder.clone().build().await.unwrap();
        store.store(&key("k"), value(b"v")).await.unwrap();
        signal("-STOP");
        // Dropped before the cleanup (which needs the daemon), even when a check fails.
        let _continue = Continue(pid.clone());
        let slack = Duration::from_millis(400);
        let check = |op: &str, e: kms_core::Error, took: Duration, bound: Duration| {
            println!(
                "measured: {op} -> {:?} in {took:?} (bound {bound:?})",
                e.kind()
            );
            assert_eq!(e.kind(), ErrorKind::Timeout, "{op}: {e}");
            assert!(took < bound + slack, "{op} took {took:?}");
        };
        let write_bound = TIMEOUT + LOCK_TIMEOUT;
        for round in 0..2 {
            let timed = Instant::now();
            let e = store.remove(&key("k")).await.unwrap_err();
            assert!(e.proves_not_applied(), "{e}");
            check(
                &format!("remove (round {round})"),
                e,
                timed.elapsed(),
                write_bound,
            );
            let timed = Instant::now();
            let e = store.remove(&key("missing")).await.unwrap_err();
            check("remove of a missing key", e, timed.elapsed(), write_bound);
            let timed = Instant::now();
            let e = store.get(&key("k")).await.unwrap_err();
            check("get", e, timed.elapsed(), TIMEOUT);
            let timed = Instant::now();
            let e = store.store(&key("k"), value(b"w")).await.unwrap_err();
            assert!(e.proves_not_applied(), "{e}");
            check("store", e, timed.elapsed(), write_bound);
            let timed = Instant::now();
            let e = store.list(&KeyPrefix::all()).await.unwrap_err();
            check("list", e, timed.elapsed(), TIMEOUT);
            let timed = Instant::now();
            let e = store.health().await.unwrap_err();
            check("health", e, timed.elapsed(), TIMEOUT);
        }
        // Not a platform call: answered at once.
        let timed = Instant::now();
        let e = store.get_version(&key("k"), "1").await.unwrap_err();
        println!(
            "measured: get_version -> {:?} in {:?}",
            e.kind(),
            timed.elapsed()
        );
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        let timed = Instant::now();
        let e = builder.clone().build().await.unwrap_err();
        check("build", e, timed.elapsed(), TIMEOUT);
        signal("-CONT");
        // The daemon answers again, and so does the store; nothing was written or removed.
        let mut value_now = None;
        for _ in 0..50 {
            if let Ok(got) = store.get(&key("k")).await {
                value_now = Some(got.value.expose_secret().to_vec());
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(value_now.as_deref(), Some(&b"v"[..]));
        assert_eq!(store.list(&KeyPrefix::all()).await.unwrap(), vec![key("k")]);
        store.remove(&key("k")).await.unwrap();
    });
}

/// Sends SIGCONT to the daemon `.0` when dropped.
struct Continue(String);

impl Drop for Continue {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.0]).status();
    }
}

trait Flat<A, B, C, D, E> {
    fn into_flat(self) -> (A, B, C, D, E);
}

impl<A, B, C, D, E> Flat<A, B, C, D, E> for ((A, B), (C, (D, E))) {
    fn into_flat(self) -> (A, B, C, D, E) {
        let ((a, b), (c, (d, e))) = self;
        (a, b, c, d, e)
    }
}

/// A bus that accepts connections but never answers makes `build` fail
/// with Timeout after the configured timeout instead of hanging. The child runs with
/// `DBUS_SESSION_BUS_ADDRESS` pointing at a socket this test accepts on and never answers.
#[test]
fn a_bus_that_never_answers_fails_build_in_time() {
    if let Some(path) = std::env::var_os("KMS_KEYRING_SILENT_BUS") {
        let _ = path;
        let started = Instant::now();
        let e = KeyringStore::builder("kms-test-silent-bus")
            .backend(KeyringBackend::SecretService)
            .timeout(Duration::from_millis(500))
            .build_blocking()
            .unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::Timeout | ErrorKind::Unavailable),
            "{e}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("kms-silent-bus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("bus");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let held = held.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                held.lock().unwrap().push(conn);
            }
        });
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["a_bus_that_never_answers_fails_build_in_time", "--exact"])
        .env("KMS_KEYRING_SILENT_BUS", "1")
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}", socket.display()),
        )
        .output()
        .expect("the test binary re-runs itself");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !held.lock().unwrap().is_empty(),
        "the child connected to the silent bus"
    );
}

/// The index items deleted with `secret-tool clear` (say, to get rid of a duplicate): the next
/// store rebuilds the index from the service's items, so no key stays unlisted.
#[tokio::test]
async fn an_index_cleared_with_secret_tool_is_rebuilt_by_the_next_store() {
    let (store, _cleanup) = fresh("cleared");
    store.store(&key("a/1"), value(b"1")).await.unwrap();
    store.store(&key("a/2"), value(b"2")).await.unwrap();
    let status = Command::new("secret-tool")
        .args([
            "clear",
            "service",
            store.service(),
            "username",
            INDEX_ACCOUNT,
        ])
        .status()
        .unwrap();
    assert!(status.success());
    store.store(&key("a/3"), value(b"3")).await.unwrap();
    assert_eq!(
        store.list(&KeyPrefix::all()).await.unwrap(),
        vec![key("a/1"), key("a/2"), key("a/3")]
    );
}

/// The index lock file held by a stuck process (stopped while holding it) on the Secret
/// Service: see `a_stuck_lock_holder_bounds_writes` in tests/common.rs.
#[tokio::test]
async fn a_lock_file_held_by_a_stuck_process_bounds_every_write() {
    require_env(
        "KMS_TEST_SECRET_SERVICE",
        "an unlocked Secret Service (gnome-keyring-daemon) on a D-Bus session",
    );
    let service = unique_service("stuck-lock");
    let _cleanup = Cleanup::new(&service, lock_file("stuck-lock"));
    a_stuck_lock_holder_bounds_writes(
        KeyringStore::builder(&service).backend(KeyringBackend::SecretService),
        lock_file("stuck-lock"),
    )
    .await;
}
