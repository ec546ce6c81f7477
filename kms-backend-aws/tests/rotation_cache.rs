//! The AWS four-step rotation, as a rotation Lambda runs it (createSecret: `PutSecretValue`
//! staged `AWSPENDING`; setSecret: the database takes the new password; testSecret: it is
//! tried; finishSecret: `UpdateSecretVersionStage` moves `AWSCURRENT`), on moto, while 50
//! readers read through a cached stack (kms-cache over a read counter over the Secrets
//! Manager store) and use what they read against a fake database.
//!
//! Single-user: the database changes the password at setSecret, so the old credential is
//! refused until finishSecret; readers report it (`CacheHandle::report_rejected`). Alternating
//! users: setSecret changes the *other* user's password, the old credential keeps working,
//! and readers move to the new one when their cached entry expires.
//!
//! Asserted: no read that started before finishSecret returned the pending version; after
//! finishSecret every reader sees the new version within a bounded wait (the TTL plus a
//! margin, not a speed); a reader whose report was answered gets the new version on its next
//! read; at most 2 backend reads of the key per rotation.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kms_backend_aws::sdk::aws_sdk_secretsmanager::Client;
use kms_backend_aws::{Deletion, SecretsManagerStore};
use kms_cache::{CacheHandle, CacheLayer, Rejection};
use kms_core::fault::{FaultHandle, FaultStore};
use kms_core::{KeyName, KeyStore, KeyStoreExt, Operation, StoreBuilder};

const READERS: usize = 50;
/// Long enough that bounded waits below never need it to pass twice.
const WAIT: Duration = Duration::from_secs(15);

/// The fake database: user → password.
#[derive(Default)]
struct Database(Mutex<HashMap<String, String>>);

impl Database {
    fn set(&self, user: &str, password: &str) {
        self.0
            .lock()
            .unwrap()
            .insert(user.to_owned(), password.to_owned());
    }
    fn accepts(&self, credential: &str) -> bool {
        let (user, password) = credential.split_once(':').unwrap();
        self.0.lock().unwrap().get(user).map(String::as_str) == Some(password)
    }
}

/// What the readers saw, shared with the test.
#[derive(Default)]
struct Seen {
    /// Set just before finishSecret is sent: a read that started earlier must not return
    /// the pending version.
    finishing: AtomicBool,
    pending: Mutex<Option<String>>,
    /// Reads that started before finishSecret and returned the pending version.
    early_pending: AtomicUsize,
    /// The version each reader read last.
    last: Mutex<Vec<String>>,
    /// Reports answered `Refreshed` whose reader's next read still returned the refused version.
    stale_after_report: AtomicUsize,
    /// Reports made, by outcome label.
    reports: Mutex<HashMap<&'static str, usize>>,
    /// Reports made.
    reported: AtomicUsize,
    stop: AtomicBool,
}

struct Rig {
    client: Client,
    name: String,
    key: KeyName,
    store: Arc<dyn KeyStore>,
    cache: CacheHandle,
    reads: FaultHandle,
    db: Arc<Database>,
    seen: Arc<Seen>,
}

async fn rig(ttl: Duration, first: &str) -> Rig {
    let config = common::config().await;
    let ns = common::unique("rotcache").replace('/', "-");
    let sm = SecretsManagerStore::builder(&config)
        .namespace(&ns)
        .unwrap()
        .deletion(Deletion::Force)
        .unwrap()
        .build()
        .unwrap();
    let client = sm.client().clone();
    let key = KeyName::new("db/credential").unwrap();
    sm.put(key.as_str(), first).await.unwrap();
    let counted = FaultStore::new(sm);
    let reads = counted.handle();
    let layer = CacheLayer::new()
        .ttl(ttl)
        .jitter(0.1)
        .rejection_rate_limit(Duration::from_millis(500));
    let cache = layer.handle();
    let store = StoreBuilder::new(counted).layer(layer).build();
    let db = Arc::new(Database::default());
    let (user, password) = first.split_once(':').unwrap();
    db.set(user, password);
    Rig {
        client,
        name: format!("{ns}/{}", key.as_str()),
        key,
        store,
        cache,
        reads,
        db,
        seen: Arc::new(Seen {
            last: Mutex::new(vec![String::new(); READERS]),
            ..Seen::default()
        }),
    }
}

impl Rig {
    /// 50 readers reading in a loop, using each credential against the database and
    /// reporting the refused ones.
    fn start_readers(&self) -> Vec<tokio::task::JoinHandle<()>> {
        (0..READERS)
            .map(|i| {
                let (store, cache, db, seen, key) = (
                    self.store.clone(),
                    self.cache.clone(),
                    self.db.clone(),
                    self.seen.clone(),
                    self.key.clone(),
                );
                tokio::spawn(async move {
                    let mut refreshed_from: Option<String> = None;
                    while !seen.stop.load(Ordering::SeqCst) {
                        let finishing = seen.finishing.load(Ordering::SeqCst);
                        let secret = store.get(&key).await.unwrap();
                        let version = secret.meta.version.clone().unwrap().to_string();
                        let pending = seen.pending.lock().unwrap().clone();
                        if !finishing && pending.as_deref() == Some(version.as_str()) {
                            seen.early_pending.fetch_add(1, Ordering::SeqCst);
                        }
                        if let Some(old) = refreshed_from.take()
                            && old == version
                        {
                            seen.stale_after_report.fetch_add(1, Ordering::SeqCst);
                        }
                        seen.last.lock().unwrap()[i] = version.clone();
                        if !db.accepts(secret.value.expose_str().unwrap()) {
                            seen.reported.fetch_add(1, Ordering::SeqCst);
                            let outcome = cache.report_rejected(&key, &version).await;
                            *seen
                                .reports
                                .lock()
                                .unwrap()
                                .entry(outcome.as_str())
                                .or_default() += 1;
                            if outcome == Rejection::Refreshed {
                                refreshed_from = Some(version);
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            })
            .collect()
    }

    async fn current_version(&self) -> String {
        let out = self
            .client
            .describe_secret()
            .secret_id(&self.name)
            .send()
            .await
            .unwrap();
        out.version_ids_to_stages()
            .unwrap()
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
            .map(|(id, _)| id.clone())
            .unwrap()
    }

    /// Waits (bounded) until every reader's last read returned `version`.
    async fn all_readers_see(&self, version: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if self.seen.last.lock().unwrap().iter().all(|v| v == version) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "readers still on {:?} {WAIT:?} after finishSecret",
                self.seen.last.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits (bounded) until some reader has reported a rejection beyond the `before` made.
    async fn a_report_was_made(&self, before: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.seen.reported.load(Ordering::SeqCst) <= before {
            assert!(tokio::time::Instant::now() < deadline, "no reader reported");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// One rotation as the Lambda runs it; `next` is the new `user:password`, `single_user`
    /// whether setSecret changes the password readers use now. Returns the backend reads of
    /// the key the rotation caused (from createSecret until every reader sees it).
    async fn rotate(&self, n: usize, next: &str, single_user: bool) -> u64 {
        // A fresh entry, so no expiry of the one before falls inside this rotation.
        self.cache.refresh(&self.key).await.unwrap();
        self.reads.reset_calls();
        let old = self.current_version().await;
        let token = format!(
            "rotcache-token-{n}-{}",
            common::unique("t").replace('/', "-")
        );
        *self.seen.pending.lock().unwrap() = Some(token.clone());
        self.seen.finishing.store(false, Ordering::SeqCst);
        let reported = self.seen.reported.load(Ordering::SeqCst);

        // createSecret
        self.client
            .put_secret_value()
            .secret_id(&self.name)
            .client_request_token(&token)
            .secret_string(next)
            .version_stages("AWSPENDING")
            .send()
            .await
            .unwrap();
        // setSecret: the database takes the pending password.
        let (user, password) = next.split_once(':').unwrap();
        self.db.set(user, password);
        if single_user {
            // The window: the old credential is refused while AWSCURRENT has not moved.
            self.a_report_was_made(reported).await;
        }
        // testSecret: the pending credential works.
        let pending = self
            .client
            .get_secret_value()
            .secret_id(&self.name)
            .version_stage("AWSPENDING")
            .send()
            .await
            .unwrap();
        assert!(self.db.accepts(pending.secret_string().unwrap()));
        // finishSecret
        self.seen.finishing.store(true, Ordering::SeqCst);
        self.client
            .update_secret_version_stage()
            .secret_id(&self.name)
            .version_stage("AWSCURRENT")
            .move_to_version_id(&token)
            .remove_from_version_id(&old)
            .send()
            .await
            .unwrap();
        self.all_readers_see(&token).await;
        self.reads.calls(Operation::Get)
    }

    async fn stop(self, readers: Vec<tokio::task::JoinHandle<()>>) -> Arc<Seen> {
        self.seen.stop.store(true, Ordering::SeqCst);
        for r in readers {
            r.await.unwrap();
        }
        let _ = self.store.delete(self.key.as_str()).await;
        self.seen.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_user_rotation_refreshes_on_rejection() {
    // A long TTL: readers move to the new credential because they report the old one.
    let rig = rig(Duration::from_secs(60), "app:pw-0").await;
    let readers = rig.start_readers();
    for n in 1..=2 {
        let reads = rig.rotate(n, &format!("app:pw-{n}"), true).await;
        assert!(reads <= 2, "rotation {n}: {reads} backend reads");
        // Past the rate limit before the next rotation.
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let seen = rig.stop(readers).await;
    assert_eq!(seen.early_pending.load(Ordering::SeqCst), 0);
    assert_eq!(seen.stale_after_report.load(Ordering::SeqCst), 0);
    let reports = seen.reports.lock().unwrap().clone();
    assert!(
        reports.get("refreshed").is_some_and(|n| *n >= 2),
        "{reports:?}"
    );
    assert!(!reports.contains_key("still_rejected"), "{reports:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alternating_users_rotation_follows_the_ttl() {
    // A short TTL drives the move: the old user keeps working until then.
    let rig = rig(Duration::from_secs(2), "app_a:pw-0").await;
    let readers = rig.start_readers();
    for n in 1..=2 {
        let user = if n % 2 == 1 { "app_b" } else { "app_a" };
        let reads = rig.rotate(n, &format!("{user}:pw-{n}"), false).await;
        assert!(reads <= 2, "rotation {n}: {reads} backend reads");
    }
    let seen = rig.stop(readers).await;
    assert_eq!(seen.early_pending.load(Ordering::SeqCst), 0);
    assert!(
        seen.reports.lock().unwrap().is_empty(),
        "no credential refused with alternating users"
    );
}
