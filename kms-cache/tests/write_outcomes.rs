//! What a failed write through the cache does to the value it holds for the key: a failure
//! that proves nothing was applied leaves the cache as it was (stale fallback included); an
//! outcome that is truly unknown withholds that key's value, and only until the write has
//! landed or never will (the load timeout). A mocked cache clock, tokio's paused clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kms_cache::CacheLayer;
use kms_cache::quanta::{Clock, Mock};
use kms_core::fault::{FaultHandle, FaultStore};
use kms_core::{
    Capabilities, Error, ErrorKind, KeyName, KeyPrefix, KeyStore, KeyStoreExt, MemoryStore,
    Operation, SecretMeta, SecretValue, StoreBuilder, StoredSecret, async_trait,
};

const TTL: Duration = Duration::from_secs(60);
const LOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// A backend whose writes answer the error the test sets, without applying anything (or, with
/// `lands`, after applying them: a write that landed and whose answer was lost).
#[derive(Debug)]
struct Writes {
    inner: FaultStore<Arc<MemoryStore>>,
    refusal: Mutex<Option<(Error, bool)>>,
}

impl Writes {
    fn answer(&self) -> Option<(Error, bool)> {
        self.refusal.lock().unwrap().clone()
    }
}

impl std::fmt::Display for Writes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writes")
    }
}

#[async_trait]
impl KeyStore for Writes {
    fn backend(&self) -> &'static str {
        "memory"
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &KeyName) -> kms_core::Result<StoredSecret> {
        self.inner.get(key).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> kms_core::Result<SecretMeta> {
        match self.answer() {
            Some((err, lands)) => {
                if lands {
                    self.inner.inner().store(key, value).await?;
                }
                Err(err)
            }
            None => self.inner.store(key, value).await,
        }
    }
    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> kms_core::Result<SecretMeta> {
        match self.answer() {
            Some((err, _)) => Err(err),
            None => self.inner.store_if_version(key, value, expected).await,
        }
    }
    async fn remove(&self, key: &KeyName) -> kms_core::Result<()> {
        match self.answer() {
            Some((err, lands)) => {
                if lands {
                    self.inner.inner().remove(key).await?;
                }
                Err(err)
            }
            None => self.inner.remove(key).await,
        }
    }
    async fn list(&self, prefix: &KeyPrefix) -> kms_core::Result<Vec<KeyName>> {
        self.inner.list(prefix).await
    }
    async fn health(&self) -> kms_core::Result<()> {
        Ok(())
    }
}

struct Stack {
    store: Arc<dyn KeyStore>,
    backend: Arc<Writes>,
    faults: FaultHandle,
    time: Arc<Mock>,
}

impl Stack {
    /// Every write from now on fails with `err` (applied first when `lands`).
    fn writes_fail(&self, err: Error, lands: bool) {
        *self.backend.refusal.lock().unwrap() = Some((err, lands));
    }

    fn writes_work(&self) {
        *self.backend.refusal.lock().unwrap() = None;
    }

    async fn read(&self, key: &str) -> Result<String, ErrorKind> {
        self.store
            .get_value(key)
            .await
            .map(|v| v.expose_str().unwrap().to_owned())
            .map_err(|e| e.kind())
    }
}

/// A cache (TTL 60 s, stale-if-error 15 min, load timeout 10 s) over `Writes`, with `keys`
/// written (`<key>@1`) and cached.
async fn stack(keys: &[&str]) -> Stack {
    let (clock, time) = Clock::mock();
    let memory = Arc::new(MemoryStore::new());
    let inner = FaultStore::new(memory);
    let faults = inner.handle();
    let backend = Arc::new(Writes {
        inner,
        refusal: Mutex::new(None),
    });
    let store = StoreBuilder::from_arc(backend.clone())
        .layer(
            CacheLayer::new()
                .ttl(TTL)
                .jitter(0.0)
                .stale_if_error(Duration::from_secs(900))
                .load_timeout(LOAD_TIMEOUT)
                .clock(clock),
        )
        .try_build()
        .unwrap();
    for k in keys {
        store.put(k, format!("{k}@1").as_str()).await.unwrap();
        store.get_value(k).await.unwrap();
    }
    Stack {
        store,
        backend,
        faults,
        time,
    }
}

/// The failures that prove a write changed nothing, as the backends mark them.
fn refusals() -> Vec<(&'static str, Error)> {
    vec![
        (
            "a sealed Vault (503)",
            Error::new(ErrorKind::Unavailable, "Vault is sealed").not_applied(),
        ),
        (
            "a connection refused before the request was sent",
            Error::new(ErrorKind::Unavailable, "connection refused").not_applied(),
        ),
        (
            "a retry layer's last refusal, no attempt having landed",
            Error::new(ErrorKind::Unavailable, "Vault is sealed")
                .not_applied()
                .exhausted(),
        ),
        (
            "rate limited",
            Error::new(ErrorKind::RateLimited, "slow down"),
        ),
        (
            "invalid",
            Error::new(ErrorKind::InvalidInput, "value too large"),
        ),
        (
            "denied",
            Error::new(ErrorKind::PermissionDenied, "policy says no"),
        ),
        (
            "unauthenticated",
            Error::new(ErrorKind::Unauthenticated, "token expired"),
        ),
        (
            "an open circuit",
            Error::new(ErrorKind::CircuitOpen, "circuit open"),
        ),
        ("a conflict", Error::new(ErrorKind::Conflict, "version 3")),
    ]
}

/// A refused write leaves a fresh entry fresh (still a hit, no backend call), and an expired
/// one servable stale through an outage, for every kind of refusal and for `store`,
/// `store_if_version` and `remove`.
#[tokio::test(start_paused = true)]
async fn a_write_whose_failure_proves_nothing_was_applied_keeps_the_cached_value() {
    for (what, err) in refusals() {
        for write in ["store", "store_if_version", "remove"] {
            let s = stack(&["app/k"]).await;
            s.writes_fail(err.clone(), false);
            let got = match write {
                "store" => s.store.put("app/k", "app/k@2").await.map(|_| ()),
                "store_if_version" => s
                    .store
                    .store_if_version(&KeyName::new("app/k").unwrap(), "app/k@2".into(), Some("1"))
                    .await
                    .map(|_| ()),
                _ => s.store.delete("app/k").await,
            };
            let got = got.unwrap_err();
            assert!(got.proves_not_applied(), "{what}: {got:?}");
            // Still fresh: answered from the cache, not the backend.
            let calls = s.faults.calls(Operation::Get);
            assert_eq!(
                s.read("app/k").await,
                Ok("app/k@1".into()),
                "{what}, {write}"
            );
            assert_eq!(s.faults.calls(Operation::Get), calls, "{what}, {write}");
            // Expired, with the backend down: still served (stale).
            s.time.increment(TTL + Duration::from_secs(1));
            s.faults.fail_always(Operation::Get, ErrorKind::Unavailable);
            assert_eq!(
                s.read("app/k").await,
                Ok("app/k@1".into()),
                "{what}, {write}"
            );
        }
    }
}

/// An unknown outcome (the request was sent, no answer came) withholds the stale value of
/// that key only, and only for the load timeout: then the old value is a stale fallback
/// again. Meanwhile the key is not fresh (the write may have landed): a read goes to the
/// backend, and what it reads is answered but not cached.
#[tokio::test(start_paused = true)]
async fn an_unknown_outcome_withholds_only_that_key_and_only_for_the_load_timeout() {
    let unknowns = [
        (
            "a lost answer",
            Error::new(ErrorKind::Unavailable, "connection reset"),
        ),
        (
            "a timeout",
            Error::new(ErrorKind::Timeout, "no answer within 500ms"),
        ),
        (
            "a refusal after an attempt that may have landed",
            Error::new(ErrorKind::Unavailable, "Vault is sealed")
                .not_applied()
                .outcome_unknown(),
        ),
    ];
    for (what, err) in unknowns {
        let s = stack(&["app/a", "app/b", "app/c"]).await;
        s.writes_fail(err, false);
        // A fresh key is not fresh any more (the write may have landed): the read goes to the
        // backend (which still has @1), and is not cached.
        assert!(s.store.put("app/c", "app/c@2").await.is_err(), "{what}");
        let calls = s.faults.calls(Operation::Get);
        assert_eq!(s.read("app/c").await, Ok("app/c@1".into()), "{what}");
        assert_eq!(s.read("app/c").await, Ok("app/c@1".into()), "{what}");
        assert_eq!(s.faults.calls(Operation::Get), calls + 2, "{what}: cached");
        // An outage: every entry expired, the backend down. The untouched key is served
        // stale, the one whose write has an unknown outcome is not.
        s.time.increment(TTL + Duration::from_secs(1));
        s.faults.fail_always(Operation::Get, ErrorKind::Unavailable);
        assert!(s.store.put("app/a", "app/a@2").await.is_err(), "{what}");
        assert_eq!(s.read("app/b").await, Ok("app/b@1".into()), "{what}");
        assert_eq!(
            s.read("app/a").await,
            Err(ErrorKind::Unavailable),
            "{what}: withheld"
        );
        // The write has landed or never will: the old value is a fallback again.
        s.time.increment(LOAD_TIMEOUT);
        assert_eq!(
            s.read("app/a").await,
            Ok("app/a@1".into()),
            "{what}: bounded"
        );
    }
}

/// A write dropped by its caller (a deadline above the cache) is an unknown outcome too.
#[tokio::test(start_paused = true)]
async fn a_dropped_write_withholds_its_key_until_the_load_timeout() {
    let s = stack(&["app/a", "app/b"]).await;
    s.time.increment(TTL + Duration::from_secs(1));
    s.faults.hang(Operation::Store);
    let dropped = tokio::time::timeout(Duration::from_millis(50), s.store.put("app/a", "x")).await;
    assert!(dropped.is_err());
    s.faults.clear();
    s.faults.fail_always(Operation::Get, ErrorKind::Unavailable);
    assert_eq!(s.read("app/b").await, Ok("app/b@1".into()));
    assert_eq!(s.read("app/a").await, Err(ErrorKind::Unavailable));
    s.time.increment(LOAD_TIMEOUT);
    assert_eq!(s.read("app/a").await, Ok("app/a@1".into()));
}

/// A removal whose outcome is unknown drops the value for good: it was meant never to be
/// served again, and may have landed.
#[tokio::test(start_paused = true)]
async fn a_removal_with_an_unknown_outcome_drops_the_value() {
    let s = stack(&["app/a"]).await;
    s.writes_fail(Error::new(ErrorKind::Timeout, "no answer"), true);
    assert!(s.store.delete("app/a").await.is_err());
    s.faults.fail_always(Operation::Get, ErrorKind::Unavailable);
    s.time
        .increment(TTL + LOAD_TIMEOUT + Duration::from_secs(1));
    assert_eq!(s.read("app/a").await, Err(ErrorKind::Unavailable));
}

/// A later write of the key that succeeds replaces the withheld value: its own value is read
/// (cached once the earlier write's mark is over: that write may still land after it), and
/// it is what an outage then serves stale.
#[tokio::test(start_paused = true)]
async fn a_later_successful_write_replaces_the_withheld_value() {
    let s = stack(&["app/a"]).await;
    s.writes_fail(Error::new(ErrorKind::Timeout, "no answer"), true);
    assert!(s.store.put("app/a", "app/a@2").await.is_err());
    s.writes_work();
    s.store.put("app/a", "app/a@3").await.unwrap();
    assert_eq!(s.read("app/a").await, Ok("app/a@3".into()));
    // Read after the write succeeded: cached as usual once the earlier mark is over.
    s.time.increment(LOAD_TIMEOUT);
    assert_eq!(s.read("app/a").await, Ok("app/a@3".into()));
    let calls = s.faults.calls(Operation::Get);
    assert_eq!(s.read("app/a").await, Ok("app/a@3".into()));
    assert_eq!(s.faults.calls(Operation::Get), calls, "a hit");
    s.faults.fail_always(Operation::Get, ErrorKind::Unavailable);
    s.time.increment(TTL + Duration::from_secs(1));
    assert_eq!(
        s.read("app/a").await,
        Ok("app/a@3".into()),
        "stale: the new value"
    );
}

/// A write whose unknown outcome landed: once the backend answers again, the new value is
/// what is read, never the withheld one.
#[tokio::test(start_paused = true)]
async fn a_landed_write_is_read_once_the_backend_answers() {
    let s = stack(&["app/a"]).await;
    s.writes_fail(Error::new(ErrorKind::Unavailable, "connection reset"), true);
    assert!(s.store.put("app/a", "app/a@2").await.is_err());
    assert_eq!(s.read("app/a").await, Ok("app/a@2".into()));
    s.time.increment(LOAD_TIMEOUT);
    assert_eq!(s.read("app/a").await, Ok("app/a@2".into()));
    s.faults.fail_always(Operation::Get, ErrorKind::Unavailable);
    s.time.increment(TTL + Duration::from_secs(1));
    assert_eq!(s.read("app/a").await, Ok("app/a@2".into()));
}
