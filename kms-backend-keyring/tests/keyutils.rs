//! The real Linux kernel keyring. Needs a session keyring: run under `keyctl session -`
//! (scripts/test does, through kms-backend-keyring/scripts/keyring-session.sh, and sets
//! `KMS_TEST_KEYUTILS`). Fails, never skips, without it.

mod common;

use std::process::Command;

use common::{
    Cleaned, Cleanup, a_stuck_lock_holder_bounds_writes, kernel_keys, lock_file, require_env,
    unique_service,
};
use kms_backend_keyring::{
    INDEX_ACCOUNT, KEYUTILS_MAX_VALUE_LEN, KeyringBackend, KeyringStore, KeyutilsAccess,
    KeyutilsScope,
};
use kms_core::{ErrorKind, KeyName, KeyPrefix, KeyStore, SecretValue};

fn keyutils_in(service: &str, tag: &str, scope: KeyutilsScope) -> KeyringStore {
    require_env(
        "KMS_TEST_KEYUTILS",
        "a kernel session keyring (keyctl session -)",
    );
    KeyringStore::builder(service)
        .backend(KeyringBackend::KeyUtils)
        .keyutils_scope(scope)
        .lock_file(lock_file(tag))
        .build_blocking()
        .expect("the kernel keyring store opens")
}

fn keyutils(service: &str, tag: &str) -> KeyringStore {
    keyutils_in(service, tag, KeyutilsScope::Session)
}

/// A store over a new service, and the fixture that removes its keys and lock file.
fn fresh(tag: &str) -> (KeyringStore, Cleanup) {
    let store = keyutils(&unique_service(tag), tag);
    let cleanup = Cleanup::new(store.service(), lock_file(tag));
    (store, cleanup)
}

mod conformance_keyutils {
    use super::*;
    kms_core::conformance_tests!(Cleaned::new(fresh("conformance").0));
}

fn key(name: &str) -> KeyName {
    KeyName::new(name).unwrap()
}

fn value(bytes: &[u8]) -> SecretValue {
    SecretValue::copy_from_slice(bytes)
}

/// Runs `keyctl args…` and returns its trimmed stdout, failing the test on error.
fn keyctl(args: &[&str]) -> String {
    let out = Command::new("keyctl")
        .args(args)
        .output()
        .expect("keyctl runs");
    assert!(
        out.status.success(),
        "keyctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn values_are_in_the_kernel_keyring() {
    let (store, _cleanup) = fresh("kernel");
    let key = KeyName::new("db/password").unwrap();
    store
        .store(&key, SecretValue::copy_from_slice(b"s3cret"))
        .await
        .unwrap();
    assert_eq!(store.capabilities().max_value_len, KEYUTILS_MAX_VALUE_LEN);
    // The key is visible to keyctl in the session keyring, under service and account.
    let out = std::process::Command::new("keyctl")
        .args(["show", "@s"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains(store.service()) && shown.contains("db/password"),
        "{shown}"
    );
    store.remove(&key).await.unwrap();
    assert_eq!(
        store.get(&key).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn empty_values_are_invalid_input() {
    let (store, _cleanup) = fresh("empty");
    let e = store
        .store(&KeyName::new("e").unwrap(), SecretValue::new(Vec::new()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_independent_instances_writing_concurrently_lose_no_index_update() {
    let service = unique_service("two-writers");
    let _cleanup = Cleanup::new(&service, lock_file("two-writers"));
    let a = keyutils(&service, "two-writers");
    let b = keyutils(&service, "two-writers");
    let mut tasks = Vec::new();
    for i in 0..30 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let key = KeyName::new(format!("k{i}")).unwrap();
            store
                .store(&key, SecretValue::copy_from_slice(b"v"))
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let c = keyutils(&service, "two-writers");
    assert_eq!(c.list(&KeyPrefix::all()).await.unwrap().len(), 30);
}

/// Two OS processes (this test binary, re-run in writer mode) store 200 keys each into one
/// service at the same time, sharing the session keyring and the lock file, and remove every
/// third; with 250-byte names the index grows to several entries and shrinks again while both
/// write, and must list exactly the keys left. In writer mode
/// (`KMS_KEYRING_WRITER=<service>|<lock tag>|<first>`) the test is one of those writers and
/// checks each of its own stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_writing_concurrently_lose_no_index_update() {
    const PER_PROCESS: usize = 200;
    if let Ok(spec) = std::env::var("KMS_KEYRING_WRITER") {
        let mut parts = spec.split('|');
        let (service, tag) = (parts.next().unwrap(), parts.next().unwrap());
        let first: usize = parts.next().unwrap().parse().unwrap();
        let store = keyutils(service, tag);
        for i in first..first + PER_PROCESS {
            let key = long_name(i);
            store
                .store(&key, SecretValue::copy_from_slice(b"v"))
                .await
                .unwrap();
            if i % 3 == 0 {
                store.remove(&key).await.unwrap();
            }
        }
        return;
    }
    let service = unique_service("two-processes");
    let tag = "two-processes";
    let _cleanup = Cleanup::new(&service, lock_file(tag));
    let store = keyutils(&service, tag);
    let spawn = |first: usize| {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "two_processes_writing_concurrently_lose_no_index_update",
                "--exact",
            ])
            // The lock tag includes the process id: pin the parent's lock file for the children.
            .env("KMS_KEYRING_WRITER", format!("{service}|{tag}|{first}"))
            .env("KMS_KEYRING_LOCK_PID", std::process::id().to_string())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the test binary re-runs itself")
    };
    let children = [spawn(0), spawn(PER_PROCESS)];
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a writer process failed");
    }
    let listed = store.list(&KeyPrefix::all()).await.unwrap();
    let left: Vec<KeyName> = (0..2 * PER_PROCESS)
        .filter(|i| i % 3 != 0)
        .map(long_name)
        .collect();
    let short = |names: &[KeyName]| -> Vec<String> {
        names.iter().map(|n| n.as_str()[..5].to_owned()).collect()
    };
    let missing: Vec<KeyName> = left
        .iter()
        .filter(|n| !listed.contains(n))
        .cloned()
        .collect();
    let extra: Vec<KeyName> = listed
        .iter()
        .filter(|n| !left.contains(n))
        .cloned()
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && listed.len() == left.len(),
        "missing {:?}, extra {:?}, {} listed",
        short(&missing),
        short(&extra),
        listed.len()
    );
    assert!(!key_id(&service, &format!("{INDEX_ACCOUNT}.2")).is_empty());
}

/// Key `i` of the two-process test: 250 bytes, so that the index needs several entries.
fn long_name(i: usize) -> KeyName {
    KeyName::new(format!("p{i:04}{}", "x".repeat(245))).unwrap()
}

/// The kernel key id of entry `account` of `service`.
fn key_id(service: &str, account: &str) -> String {
    keyctl(&[
        "search",
        "@s",
        "user",
        &format!("keyring:{account}@{service}"),
    ])
}

/// On the real kernel keyring, with writes refused by key permissions
/// (possessor may view/read/search/link/setattr, not write): a store whose index write fails
/// writes no value; a store whose value write fails leaves the old value and the index.
#[tokio::test]
async fn a_failed_store_on_the_kernel_keyring_changes_nothing() {
    let (store, _cleanup) = fresh("refused");
    let service = store.service().to_owned();
    store.store(&key("a/1"), value(b"old")).await.unwrap();
    // The index entry becomes read-only: a new key cannot be listed, so it is not written.
    let index = key_id(&service, INDEX_ACCOUNT);
    keyctl(&["setperm", &index, "0x3b010000"]);
    let e = store.store(&key("t/k"), value(b"value")).await.unwrap_err();
    assert!(e.message().contains("nothing was written"), "{e}");
    assert_eq!(
        store.get(&key("t/k")).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store.list(&KeyPrefix::all()).await.unwrap(),
        vec![key("a/1")]
    );
    keyctl(&["setperm", &index, "0x3f010000"]);
    // The value entry becomes read-only: the overwrite fails, the old value stays.
    let a1 = key_id(&service, "a/1");
    keyctl(&["setperm", &a1, "0x3b010000"]);
    let e = store.store(&key("a/1"), value(b"uno")).await.unwrap_err();
    assert_ne!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert_eq!(
        store.get(&key("a/1")).await.unwrap().value.expose_secret(),
        b"old"
    );
    assert_eq!(
        store.list(&KeyPrefix::all()).await.unwrap(),
        vec![key("a/1")]
    );
    keyctl(&["setperm", &a1, "0x3f010000"]);
}

/// On the real kernel keyring: 300 keys with 256-byte names (the old single
/// 32767-byte index entry failed at the 127th) are all stored and listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_holds_more_than_126_keys_with_long_names() {
    let (store, _cleanup) = fresh("many");
    let names: Vec<KeyName> = (0..300)
        .map(|i| key(&format!("{i:03}{}", "n".repeat(253))))
        .collect();
    for name in &names {
        store.store(name, value(b"v")).await.unwrap();
    }
    assert_eq!(store.list(&KeyPrefix::all()).await.unwrap(), names);
    // Several index entries, each within the kernel's payload limit.
    assert!(!key_id(store.service(), &format!("{INDEX_ACCOUNT}.1")).is_empty());
    for name in &names[..150] {
        store.remove(name).await.unwrap();
    }
    assert_eq!(store.list(&KeyPrefix::all()).await.unwrap(), names[150..]);
}

/// On the real kernel keyring: garbage in the index makes `list` and `health`
/// fail with InvalidData; the next store rebuilds the index from the service's keys.
#[tokio::test]
async fn a_corrupt_kernel_index_is_rebuilt_from_the_keyring() {
    let (store, _cleanup) = fresh("corrupt");
    let service = store.service().to_owned();
    store.store(&key("a/1"), value(b"1")).await.unwrap();
    store.store(&key("a/2"), value(b"2")).await.unwrap();
    keyctl(&[
        "add",
        "user",
        &format!("keyring:{INDEX_ACCOUNT}@{service}"),
        "garbage",
        "@s",
    ]);
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

/// A secret put in from outside with `keyctl add`, under the documented
/// description `keyring:<name>@<service>`, is read by the store.
#[tokio::test]
async fn a_secret_added_with_keyctl_is_read_by_the_store() {
    let (store, _cleanup) = fresh("keyctl-in");
    keyctl(&[
        "add",
        "user",
        &kms_backend_keyring::keyutils_description(store.service(), "db/password"),
        "from-keyctl",
        "@s",
    ]);
    assert_eq!(
        store
            .get(&key("db/password"))
            .await
            .unwrap()
            .value
            .expose_secret(),
        b"from-keyctl"
    );
}

/// `keyctl session - sh -c <script>`: a fresh session keyring of the same uid.
fn in_fresh_session(script: &str) -> std::process::Output {
    Command::new("keyctl")
        .args(["session", "-", "sh", "-c", script])
        .output()
        .expect("keyctl runs")
}

/// The scope is what the README says. Session keys are not in the persistent
/// keyring and a fresh session of the same uid cannot find them; persistent keys are, and it
/// can (after `keyctl get_persistent`).
#[tokio::test]
async fn the_scope_decides_who_sees_a_key() {
    let service = unique_service("scope");
    let _cleanup = Cleanup::new(&service, lock_file("scope"));
    let session = keyutils_in(&service, "scope", KeyutilsScope::Session);
    session
        .store(&key("s"), value(b"session-only"))
        .await
        .unwrap();
    let persistent = keyutils_in(&service, "scope", KeyutilsScope::Persistent);
    persistent
        .store(&key("p"), value(b"persistent"))
        .await
        .unwrap();
    let find = |name: &str| {
        format!(
            "keyctl get_persistent @s >/dev/null && keyctl search @s user 'keyring:{name}@{service}'"
        )
    };
    assert!(
        !in_fresh_session(&find("s")).status.success(),
        "a session key leaked"
    );
    let out = in_fresh_session(&find("p"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Where the keys are linked.
    let persistent_ring = keyctl(&["get_persistent", "@s"]);
    let linked = keyctl(&["rdescribe", &persistent_ring]);
    assert!(linked.contains("_persistent"), "{linked}");
    let in_persistent = keyctl(&["list", &persistent_ring]);
    assert!(
        in_persistent.contains(&format!("keyring:p@{service}")),
        "{in_persistent}"
    );
    assert!(
        !in_persistent.contains(&format!("keyring:s@{service}")),
        "{in_persistent}"
    );
    // Both stores read both keys: reads search everything linked into the session.
    assert_eq!(
        session.get(&key("p")).await.unwrap().value.expose_secret(),
        b"persistent"
    );
    assert_eq!(
        persistent
            .get(&key("s"))
            .await
            .unwrap()
            .value
            .expose_secret(),
        b"session-only"
    );
}

/// The fixture removes every key and the lock file a test created, in the
/// session and the persistent keyring.
#[tokio::test]
async fn the_cleanup_fixture_leaves_nothing_behind() {
    let service = unique_service("cleanup");
    let lock = lock_file("cleanup");
    {
        let _cleanup = Cleanup::new(&service, lock.clone());
        for scope in [KeyutilsScope::Session, KeyutilsScope::Persistent] {
            let store = keyutils_in(&service, "cleanup", scope);
            store
                .store(&key(&format!("{scope:?}")), value(b"v"))
                .await
                .unwrap();
        }
        assert_eq!(kernel_keys(&service).len(), 3, "two keys and the index");
        assert!(lock.exists());
    }
    assert!(kernel_keys(&service).is_empty());
    assert!(!lock.exists());
}

/// A system user created for one test and deleted when dropped (the kernel's key quota only
/// applies to non-root users, and the suite runs as root).
struct ThrowawayUser {
    name: String,
    uid: String,
    gid: String,
}

impl ThrowawayUser {
    /// The user `kms<tag><pid>`.
    fn create(tag: &str) -> Self {
        let name = format!("kms{tag}{}", std::process::id());
        let status = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                &name,
            ])
            .status()
            .expect("useradd runs");
        assert!(status.success(), "useradd {name} failed");
        let id = |flag: &str| {
            let out = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        Self { name, uid, gid }
    }
}

impl Drop for ThrowawayUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

fn current_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// On the real kernel keyring, as a non-root user (a throwaway user
/// when the suite runs as root): a value over the byte quota and a store at the key quota fail
/// with PermissionDenied naming the quota, not "retry later", and change nothing.
#[test]
fn a_non_root_user_at_the_kernel_quota_gets_a_permanent_error_and_no_change() {
    const TEST: &str = "a_non_root_user_at_the_kernel_quota_gets_a_permanent_error_and_no_change";
    if std::env::var_os("KMS_KEYRING_QUOTA_CHILD").is_some() {
        return futures_lite::future::block_on(quota_child());
    }
    require_env(
        "KMS_TEST_KEYUTILS",
        "a kernel session keyring (keyctl session -)",
    );
    let _lock = Cleanup::new("unused", lock_file("quota"));
    let exe = std::env::current_exe().unwrap();
    let mut cmd;
    let _user;
    if current_uid() == 0 {
        let user = ThrowawayUser::create("q");
        cmd = Command::new("setpriv");
        cmd.args([
            &format!("--reuid={}", user.uid),
            &format!("--regid={}", user.gid),
            "--clear-groups",
            "--",
            "keyctl",
            "session",
            "-",
        ]);
        _user = Some(user);
    } else {
        cmd = Command::new("keyctl");
        cmd.args(["session", "-"]);
        _user = None;
    }
    let out = cmd
        .arg(exe)
        .args([TEST, "--exact"])
        .env("KMS_KEYRING_QUOTA_CHILD", "1")
        .env("KMS_KEYRING_LOCK_PID", std::process::id().to_string())
        .output()
        .expect("the test binary re-runs itself");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The non-root half: its keys live in its own `keyctl session -` and go with it.
async fn quota_child() {
    assert_ne!(current_uid(), 0, "the quota child runs as a non-root user");
    let maxbytes: usize = std::fs::read_to_string("/proc/sys/kernel/keys/maxbytes")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let a = keyutils(&unique_service("quota-a"), "quota");
    let quota_error = |e: &kms_core::Error| {
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        assert!(!e.is_retryable());
        assert!(
            e.message().contains("quota") && e.message().contains("maxkeys"),
            "{e}"
        );
    };
    // Item 5: a value larger than the byte quota (but within the 32767-byte payload limit).
    if maxbytes < KEYUTILS_MAX_VALUE_LEN {
        let big = vec![7u8; maxbytes + 5000];
        let e = a
            .store(&key("big"), SecretValue::new(big))
            .await
            .unwrap_err();
        quota_error(&e);
        assert_eq!(
            a.get(&key("big")).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert!(a.list(&KeyPrefix::all()).await.unwrap().is_empty());
    }
    // Item 1 (a): fill the key quota; the store that hits it leaves nothing behind.
    let mut stored = Vec::new();
    for i in 0..5000 {
        let k = key(&format!("k{i}"));
        match a.store(&k, value(b"v")).await {
            Ok(_) => stored.push(k),
            Err(e) => {
                quota_error(&e);
                assert_eq!(a.get(&k).await.unwrap_err().kind(), ErrorKind::NotFound);
                break;
            }
        }
    }
    assert!(
        !stored.is_empty() && stored.len() < 5000,
        "{}",
        stored.len()
    );
    let mut listed = a.list(&KeyPrefix::all()).await.unwrap();
    listed.sort();
    stored.sort();
    assert_eq!(listed, stored);
    // A new service at the quota: no value lands without its index entry.
    let b = keyutils(&unique_service("quota-b"), "quota");
    let e = b.store(&key("t/k"), value(b"value")).await.unwrap_err();
    quota_error(&e);
    assert_eq!(
        b.get(&key("t/k")).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(b.list(&KeyPrefix::all()).await.unwrap().is_empty());
}

/// Service names that would make two services share kernel key descriptions
/// (`keyring:a@b@c` is key `a@b` of `c` and key `a` of `b@c`, and key names may contain `@`),
/// or that the kernel cannot hold in a description, are refused at build with `Configuration`
/// naming the rule, instead of reading another service's keys or failing every call as
/// "unavailable".
#[tokio::test]
async fn service_names_the_kernel_keyring_cannot_keep_apart_are_configuration_errors() {
    require_env(
        "KMS_TEST_KEYUTILS",
        "a kernel session keyring (keyctl session -)",
    );
    let base = unique_service("svc-rules");
    let long = format!(
        "{base}{}",
        "s".repeat(kms_backend_keyring::KEYUTILS_MAX_SERVICE_LEN + 1 - base.len())
    );
    for (service, names) in [
        (format!("b@{base}"), "'@'"),
        (long.clone(), "the longest is"),
    ] {
        let e = KeyringStore::builder(&service)
            .backend(KeyringBackend::KeyUtils)
            .lock_file(lock_file("svc-rules"))
            .build()
            .await
            .expect_err("refused service name");
        assert_eq!(e.kind(), ErrorKind::Configuration, "{e}");
        assert!(e.message().contains(names), "{e}");
        assert!(e.message().contains("service name"), "{e}");
        assert!(!e.message().contains("  "), "{e}");
    }
    // The longest allowed service holds the longest key name, on the real keyring.
    let longest = &long[..kms_backend_keyring::KEYUTILS_MAX_SERVICE_LEN];
    let store = keyutils(longest, "svc-rules");
    let _cleanup = Cleanup::new(longest, lock_file("svc-rules"));
    let name = key(&"n@".repeat(kms_core::MAX_KEY_NAME_LEN / 2));
    store.store(&name, value(b"v")).await.unwrap();
    assert_eq!(store.get(&name).await.unwrap().value.expose_secret(), b"v");
    assert_eq!(
        store.list(&KeyPrefix::all()).await.unwrap(),
        vec![name.clone()]
    );
    store.remove(&name).await.unwrap();
    // The same key name in a service that ends like another one stays apart.
    let other = keyutils(&format!("x{base}"), "svc-rules");
    let _cleanup_other = Cleanup::new(other.service(), lock_file("svc-rules"));
    other.store(&key("a@b"), value(b"other")).await.unwrap();
    let store = keyutils(&base, "svc-rules");
    let _cleanup_base = Cleanup::new(&base, lock_file("svc-rules"));
    assert_eq!(
        store.get(&key("a@b")).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// A key whose kernel permissions keep this process out (here: possessor may only view it) is
/// `PermissionDenied`, not the retryable `Unavailable`, for `get` and `store`; the failed
/// store changes nothing.
#[tokio::test]
async fn a_key_the_process_may_not_search_is_permission_denied_and_changes_nothing() {
    let (store, _cleanup) = fresh("denied");
    let service = store.service().to_owned();
    store.store(&key("a/1"), value(b"1")).await.unwrap();
    let id = keyctl(&[
        "add",
        "user",
        &kms_backend_keyring::keyutils_description(&service, "locked/k"),
        "outside",
        "@s",
    ]);
    keyctl(&["setperm", &id, "0x01010000"]);
    let e = store.get(&key("locked/k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(!e.is_retryable(), "{e}");
    assert!(!e.message().contains("outside"), "{e}");
    let e = store
        .store(&key("locked/k"), value(b"mine"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert_eq!(
        store.list(&KeyPrefix::all()).await.unwrap(),
        vec![key("a/1")]
    );
    // The key cannot be searched or invalidated any more; unlinking it from the session
    // keyring (write permission on the keyring) drops it.
    keyctl(&["unlink", &id, "@s"]);
}

/// An index entry missing from the middle of the chain on the real kernel keyring (unlinked by
/// hand) makes `list` and `health` fail with InvalidData instead of silently listing fewer
/// keys; the next store rebuilds every name from the keyring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kernel_index_entry_missing_from_the_chain_is_corrupt_and_rebuilt() {
    let (store, _cleanup) = fresh("gap");
    let service = store.service().to_owned();
    let names: Vec<KeyName> = (0..300)
        .map(|i| key(&format!("{i:03}{}", "n".repeat(253))))
        .collect();
    for name in &names {
        store.store(name, value(b"v")).await.unwrap();
    }
    assert!(!key_id(&service, &format!("{INDEX_ACCOUNT}.2")).is_empty());
    keyctl(&[
        "invalidate",
        &key_id(&service, &format!("{INDEX_ACCOUNT}.1")),
    ]);
    let e = store.list(&KeyPrefix::all()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
    assert!(e.message().contains("missing"), "{e}");
    assert_eq!(
        store.health().await.unwrap_err().kind(),
        ErrorKind::InvalidData
    );
    store.store(&key("after"), value(b"v")).await.unwrap();
    let mut expected = names.clone();
    expected.push(key("after"));
    assert_eq!(store.list(&KeyPrefix::all()).await.unwrap(), expected);
    store.health().await.unwrap();
}

/// Another program's key with a long description (over the 512 bytes `linux-keyutils`
/// describes into; it used to panic every walk of the keyring, failing each overwrite and
/// every index rebuild) sitting in the session keyring changes nothing: overwrites, a rebuild
/// of a corrupt index, and the cleanup fixture work around it.
#[tokio::test]
async fn a_foreign_key_with_a_long_description_breaks_nothing() {
    let (store, _cleanup) = fresh("long-desc");
    let service = store.service().to_owned();
    let foreign = keyctl(&["add", "user", &"f".repeat(3000), "not ours", "@s"]);
    store.store(&key("a/1"), value(b"one")).await.unwrap();
    store.store(&key("a/1"), value(b"uno")).await.unwrap();
    assert_eq!(
        store.get(&key("a/1")).await.unwrap().value.expose_secret(),
        b"uno"
    );
    keyctl(&[
        "add",
        "user",
        &format!("keyring:{INDEX_ACCOUNT}@{service}"),
        "garbage",
        "@s",
    ]);
    store.store(&key("a/2"), value(b"two")).await.unwrap();
    assert_eq!(
        store.list(&KeyPrefix::all()).await.unwrap(),
        vec![key("a/1"), key("a/2")]
    );
    assert_eq!(kernel_keys(&service).len(), 3, "two keys and the index");
    keyctl(&["unlink", &foreign, "@s"]);
}

/// The index lock file held by a stuck process (stopped while holding it) on the kernel
/// keyring: see `a_stuck_lock_holder_bounds_writes` in tests/common.rs.
#[tokio::test]
async fn a_lock_file_held_by_a_stuck_process_bounds_every_write() {
    require_env(
        "KMS_TEST_KEYUTILS",
        "a kernel session keyring (keyctl session -)",
    );
    let service = unique_service("stuck-lock");
    let _cleanup = Cleanup::new(&service, lock_file("stuck-lock"));
    a_stuck_lock_holder_bounds_writes(
        KeyringStore::builder(&service).backend(KeyringBackend::KeyUtils),
        lock_file("stuck-lock"),
    )
    .await;
}

/// The kernel key id of `description`, searched from the session keyring.
fn id_of(description: &str) -> String {
    keyctl(&["search", "@s", "user", description])
}

/// The permission mask of key `id` (`keyctl rdescribe`: `type;uid;gid;perm;description`).
fn perm_of(id: &str) -> String {
    keyctl(&["rdescribe", id])
        .split(';')
        .nth(3)
        .unwrap()
        .to_owned()
}

/// A process that switches to another uid but keeps the session keyring (`setpriv` without
/// a new session) possesses every key in it. With the default access (`KeyutilsAccess::Uid`)
/// the keys grant possessors nothing (`0x003f0000`): that process can neither read nor find
/// them, through the store (`PermissionDenied`, for the key and for the index alike) or
/// `keyctl`; a key it planted in the shared keyring under one of our descriptions is neither
/// read, overwritten nor removed (`PermissionDenied`), so no secret of ours lands in a key it
/// owns. The documented opposite, `KeyutilsAccess::Possessor`, keeps the kernel's defaults
/// (`0x3f010000`): the other uid reads those keys, and the store reads its planted key. And
/// the documented cost of the default: a fresh session of the same uid reads a key by its
/// serial number, which it cannot under `Possessor`.
#[test]
fn another_uid_keeping_the_session_keyring_can_neither_read_nor_plant() {
    const TEST: &str = "another_uid_keeping_the_session_keyring_can_neither_read_nor_plant";
    if let Ok(service) = std::env::var("KMS_KEYRING_OTHER_UID") {
        return futures_lite::future::block_on(other_uid_child(&service));
    }
    require_env(
        "KMS_TEST_KEYUTILS",
        "a kernel session keyring (keyctl session -)",
    );
    assert_eq!(
        current_uid(),
        0,
        "this test changes uid with setpriv and needs root (the suite runs as root)"
    );
    let service = unique_service("other-uid");
    let _cleanup = Cleanup::new(&service, lock_file("other-uid"));
    let description = |name: &str| kms_backend_keyring::keyutils_description(&service, name);
    futures_lite::future::block_on(async {
        let strict = keyutils(&service, "other-uid");
        strict.store(&key("k"), value(b"uid-only")).await.unwrap();
        let possessed = KeyringStore::builder(&service)
            .backend(KeyringBackend::KeyUtils)
            .keyutils_access(KeyutilsAccess::Possessor)
            .lock_file(lock_file("other-uid"))
            .build()
            .await
            .unwrap();
        possessed
            .store(&key("p"), value(b"possessed"))
            .await
            .unwrap();
        let (k, p) = (id_of(&description("k")), id_of(&description("p")));
        assert_eq!(perm_of(&k), "003f0000");
        assert_eq!(perm_of(&id_of(&description(INDEX_ACCOUNT))), "003f0000");
        assert_eq!(perm_of(&p), "3f010000");
        // The cost of the default: the uid, not the session, is the boundary.
        let out = in_fresh_session(&format!("keyctl pipe {k}"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"uid-only");
        assert!(
            !in_fresh_session(&format!("keyctl pipe {p}"))
                .status
                .success()
        );

        let user = ThrowawayUser::create("u");
        let as_user = |args: &[&str]| {
            Command::new("setpriv")
                .args([
                    &format!("--reuid={}", user.uid),
                    &format!("--regid={}", user.gid),
                    "--clear-groups",
                    "--",
                ])
                .args(args)
                .output()
                .expect("setpriv runs")
        };
        // Straight through the kernel.
        let out = as_user(&["keyctl", "pipe", &k]);
        assert!(!out.status.success(), "the other uid read the key");
        assert!(out.stdout.is_empty());
        let out = as_user(&["keyctl", "search", "@s", "user", &description("k")]);
        assert!(!out.status.success(), "the other uid found the key");
        let out = as_user(&["keyctl", "pipe", &p]);
        assert_eq!(
            out.stdout, b"possessed",
            "Possessor keeps the kernel's defaults"
        );
        // Through the store, in a process of the other uid.
        let out = Command::new("setpriv")
            .args([
                &format!("--reuid={}", user.uid),
                &format!("--regid={}", user.gid),
                "--clear-groups",
                "--",
            ])
            .arg(std::env::current_exe().unwrap())
            .args([TEST, "--exact", "--nocapture"])
            .env("KMS_KEYRING_OTHER_UID", &service)
            .output()
            .expect("the test binary re-runs itself");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in stdout.lines().filter(|l| l.starts_with("measured:")) {
            println!("{line}");
        }
        // A key the other uid planted under one of our descriptions.
        let out = as_user(&[
            "keyctl",
            "add",
            "user",
            &description("planted"),
            "theirs",
            "@s",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let planted = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let refused = |op: &str, e: kms_core::Error| {
            println!(
                "measured: {op} of a key planted by uid {} -> {:?}",
                user.uid,
                e.kind()
            );
            assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{op}: {e}");
            assert!(
                e.message().contains(&format!("uid {}", user.uid)),
                "{op}: {e}"
            );
            assert!(!e.message().contains("theirs"), "{op}: {e}");
        };
        refused("get", strict.get(&key("planted")).await.unwrap_err());
        refused(
            "store",
            strict
                .store(&key("planted"), value(b"ours"))
                .await
                .unwrap_err(),
        );
        refused("remove", strict.remove(&key("planted")).await.unwrap_err());
        assert_eq!(
            keyctl(&["pipe", &planted]),
            "theirs",
            "our value went into their key"
        );
        assert!(
            !strict
                .list(&KeyPrefix::all())
                .await
                .unwrap()
                .contains(&key("planted"))
        );
        assert_eq!(
            possessed
                .get(&key("planted"))
                .await
                .unwrap()
                .value
                .expose_secret(),
            b"theirs"
        );
        keyctl(&["unlink", &planted, "@s"]);
    });
}

/// The other uid's half: the store finds no way into the keys of the uid-only store; a
/// possessor-mode store reads the possessor-mode key (and a uid-only store refuses it: it
/// belongs to another uid).
async fn other_uid_child(service: &str) {
    assert_ne!(current_uid(), 0, "the child runs as the throwaway user");
    let store = keyutils(service, "other-uid");
    let e = store.get(&key("k")).await.unwrap_err();
    println!(
        "measured: get by another uid keeping the session -> {:?}",
        e.kind()
    );
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(!e.message().contains("uid-only"), "{e}");
    let e = store.list(&KeyPrefix::all()).await.unwrap_err();
    println!(
        "measured: list by another uid keeping the session -> {:?}",
        e.kind()
    );
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    let e = store.get(&key("p")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.message().contains("belongs to uid 0"), "{e}");
    let possessor = KeyringStore::builder(service)
        .backend(KeyringBackend::KeyUtils)
        .keyutils_access(KeyutilsAccess::Possessor)
        .lock_file(lock_file("other-uid"))
        .build()
        .await
        .unwrap();
    assert_eq!(
        possessor
            .get(&key("p"))
            .await
            .unwrap()
            .value
            .expose_secret(),
        b"possessed"
    );
}

/// A session keyring that can no longer be used (revoked, invalidated or expired after the
/// store was built): every operation fails with `Unavailable` naming the session keyring,
/// for a key that was stored and one that never was alike, never `NotFound` or an empty
/// list (the kernel answers a search of a dead keyring with the same errors as a miss); the
/// failed writes are marked as having changed nothing; a store built afterwards does not
/// open. Each case runs in a session keyring of its own (`keyctl session -`).
#[test]
fn an_unusable_session_keyring_is_unavailable_never_not_found() {
    const TEST: &str = "an_unusable_session_keyring_is_unavailable_never_not_found";
    if let Ok(how) = std::env::var("KMS_KEYRING_BREAK_SESSION") {
        return futures_lite::future::block_on(broken_session_child(&how));
    }
    require_env(
        "KMS_TEST_KEYUTILS",
        "a kernel session keyring (keyctl session -)",
    );
    let _lock = Cleanup::new("unused", lock_file("broken-session"));
    for how in ["revoke", "invalidate", "expire"] {
        let out = Command::new("keyctl")
            .args(["session", "-"])
            .arg(std::env::current_exe().unwrap())
            .args([TEST, "--exact", "--nocapture"])
            .env("KMS_KEYRING_BREAK_SESSION", how)
            .env("KMS_KEYRING_LOCK_PID", std::process::id().to_string())
            .output()
            .expect("the test binary re-runs itself");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{how}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in stdout.lines().filter(|l| l.starts_with("measured:")) {
            println!("{line}");
        }
    }
}

/// The child half: breaks its own session keyring, then checks every operation.
async fn broken_session_child(how: &str) {
    let service = unique_service("broken-session");
    let store = keyutils(&service, "broken-session");
    store.store(&key("k"), value(b"v")).await.unwrap();
    match how {
        "revoke" => drop(keyctl(&["revoke", "@s"])),
        "invalidate" => drop(keyctl(&["invalidate", "@s"])),
        _ => {
            keyctl(&["timeout", "@s", "1"]);
            std::thread::sleep(std::time::Duration::from_millis(1500));
        }
    }
    let check = |op: &str, e: kms_core::Error| {
        println!(
            "measured: {op} with a session keyring that was made to {how} -> {:?}",
            e.kind()
        );
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{how} {op}: {e}");
        assert!(e.message().contains("session keyring"), "{how} {op}: {e}");
        assert!(!e.message().contains("  "), "{how} {op}: {e}");
    };
    check("get", store.get(&key("k")).await.unwrap_err());
    check(
        "get of a key never stored",
        store.get(&key("never")).await.unwrap_err(),
    );
    check("list", store.list(&KeyPrefix::all()).await.unwrap_err());
    check("health", store.health().await.unwrap_err());
    let e = store.store(&key("n"), value(b"v")).await.unwrap_err();
    assert!(e.proves_not_applied(), "{e}");
    check("store", e);
    let e = store.remove(&key("k")).await.unwrap_err();
    assert!(e.proves_not_applied(), "{e}");
    check("remove", e);
    let e = KeyringStore::builder(&service)
        .backend(KeyringBackend::KeyUtils)
        .lock_file(lock_file("broken-session"))
        .build()
        .await
        .unwrap_err();
    check("build", e);
}
