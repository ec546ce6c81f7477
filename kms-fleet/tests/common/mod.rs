//! Shared helpers of kms-fleet's tests: the NATS peer, unique names, a counting store, a
//! three-node JetStream cluster the fault tests start and kill, and a fleet of caches with
//! reader tasks that check what each cache serves.
#![allow(dead_code)]

use std::fmt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kms_cache::{CacheHandle, CacheLayer};
use kms_core::{
    Capabilities, KeyName, KeyPrefix, KeyStore, Result, SecretMeta, SecretValue, StoredSecret,
    async_trait,
};
use kms_fleet::{FleetLink, FleetMetrics, Subscriber};

/// The single-node NATS server (scripts/peers/nats.sh).
pub fn nats_url() -> String {
    std::env::var("KMS_TEST_NATS_URL").expect(
        "KMS_TEST_NATS_URL is not set: start NATS with scripts/test (scripts/peers/nats.sh) \
         or export KMS_TEST_NATS_URL=nats://127.0.0.1:4222",
    )
}

/// The nats-server binary.
pub fn nats_server() -> String {
    std::env::var("KMS_TEST_NATS_SERVER").unwrap_or_else(|_| {
        if Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server".to_owned()
        } else {
            "nats-server".to_owned()
        }
    })
}

/// A name unique to this process and call: ASCII letters and digits, usable as a store id and
/// in key names.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}{}x{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        fastrand::u32(..)
    )
}

/// A link to `url` with its own metrics.
pub async fn link(url: &str) -> FleetLink {
    FleetLink::builder(url)
        .origin(unique("t"))
        .metrics(FleetMetrics::new())
        .connect()
        .await
        .expect("connect to NATS")
}

/// Waits until `cond` holds, at most `limit`; whether it did.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cond()
}

/// Counts the calls that reach the store it wraps.
#[derive(Debug)]
pub struct Counting<S> {
    pub inner: S,
    pub gets: Arc<AtomicU64>,
    pub calls: Arc<AtomicU64>,
}

impl<S: KeyStore> Counting<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            gets: Arc::default(),
            calls: Arc::default(),
        }
    }
}

impl<S: KeyStore> fmt::Display for Counting<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

#[async_trait]
impl<S: KeyStore> KeyStore for Counting<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.get(key).await
    }
    async fn get_version(&self, key: &KeyName, version: &str) -> Result<StoredSecret> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.get_version(key, version).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.store(key, value).await
    }
    async fn store_if_version(
        &self,
        key: &KeyName,
        value: SecretValue,
        expected: Option<&str>,
    ) -> Result<SecretMeta> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.store_if_version(key, value, expected).await
    }
    async fn remove(&self, key: &KeyName) -> Result<()> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.remove(key).await
    }
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.list(prefix).await
    }
    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }
}

/// A three-node JetStream cluster on 127.0.0.1: client ports `base..base+3`, route ports
/// `base+2000..`, stores in a temporary directory. Killed (SIGKILL) when dropped.
pub struct Cluster {
    pub base: u16,
    dir: tempfile::TempDir,
    nodes: Vec<Option<Child>>,
}

impl Cluster {
    pub fn start(base: u16) -> Self {
        let mut cluster = Self {
            base,
            dir: tempfile::tempdir().unwrap(),
            nodes: vec![None, None, None],
        };
        for i in 0..3 {
            cluster.restart(i);
        }
        cluster
    }

    /// The client URL naming every node.
    pub fn url(&self) -> String {
        (0..3)
            .map(|i| format!("nats://127.0.0.1:{}", self.base + i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts node `i` (again), on its own store directory.
    pub fn restart(&mut self, i: usize) {
        let port = self.base + i as u16;
        let routes: Vec<String> = (0..3u16)
            .filter(|j| usize::from(*j) != i)
            .map(|j| format!("nats://127.0.0.1:{}", self.base + 2000 + j))
            .collect();
        let store = self.dir.path().join(format!("n{i}"));
        let log = std::fs::File::create(self.dir.path().join(format!("n{i}.log"))).unwrap();
        let child = Command::new(nats_server())
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(&store)
            .args(["-n", &format!("fleet-n{i}"), "--cluster_name", "kmsfleet"])
            .args([
                "--cluster",
                &format!("nats://127.0.0.1:{}", self.base + 2000 + i as u16),
            ])
            .args(["--routes", &routes.join(",")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        self.nodes[i] = Some(child);
    }

    /// `kill -9` node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until the cluster stores a message in a three-replica stream (so it has a
    /// metadata leader and can place and lead streams).
    pub async fn wait_ready(&self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            let attempt = async {
                let servers: Vec<String> = self.url().split(',').map(str::to_owned).collect();
                let client = async_nats::connect(servers).await.ok()?;
                let js = async_nats::jetstream::new(client);
                js.get_or_create_stream(async_nats::jetstream::stream::Config {
                    name: "KMS_FLEET_PROBE".to_owned(),
                    subjects: vec!["kmsfleetprobe.>".to_owned()],
                    num_replicas: 3,
                    ..Default::default()
                })
                .await
                .ok()?;
                js.publish("kmsfleetprobe.x", "x".into())
                    .await
                    .ok()?
                    .await
                    .ok()
            };
            if let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(3), attempt).await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("n{i}.log"))).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..3 {
            self.kill(i);
        }
    }
}

/// One cache of the test fleet: the cache, its handle, its subscriber, and what its reader
/// task saw.
pub struct Member {
    pub cache: Arc<dyn KeyStore>,
    pub handle: CacheHandle,
    pub subscriber: Subscriber,
    /// The highest version its reader was served.
    pub seen: Arc<AtomicU64>,
}

/// Caches over one store, each followed by a subscriber and read in a loop by a task that
/// records the highest version served, counts caller errors and counts a version lower than
/// one already served (a regression).
pub struct TestFleet {
    pub members: Vec<Member>,
    pub errors: Arc<AtomicU64>,
    pub regressions: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl TestFleet {
    /// `n` caches over `store` (TTL `ttl`, stale-if-error on), subscribed to `store_id` over
    /// `links` (round robin), each reading `key` every `every`.
    pub async fn start(
        n: usize,
        store: Arc<dyn KeyStore>,
        store_id: &str,
        links: &[FleetLink],
        key: &KeyName,
        ttl: Duration,
        every: Duration,
    ) -> Self {
        let errors = Arc::new(AtomicU64::new(0));
        let regressions = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut members = Vec::with_capacity(n);
        for i in 0..n {
            let layer = CacheLayer::new()
                .ttl(ttl)
                .jitter(0.0)
                .stale_if_error(Duration::from_secs(600));
            let cached = layer.wrap(store.clone());
            let handle = cached.handle();
            let cache: Arc<dyn KeyStore> = Arc::new(cached);
            let subscriber = Subscriber::builder(&links[i % links.len()], store_id, handle.clone())
                .revalidate_jitter(Duration::from_millis(200))
                .spawn()
                .unwrap();
            let seen = Arc::new(AtomicU64::new(0));
            tokio::spawn(read_loop(
                cache.clone(),
                key.clone(),
                seen.clone(),
                errors.clone(),
                regressions.clone(),
                stop.clone(),
                every,
            ));
            members.push(Member {
                cache,
                handle,
                subscriber,
                seen,
            });
        }
        Self {
            members,
            errors,
            regressions,
            stop,
        }
    }

    /// Whether every subscriber follows its stream.
    pub fn all_following(&self) -> bool {
        self.members.iter().all(|m| m.subscriber.is_following())
    }

    /// The lowest version any reader has been served.
    pub fn min_seen(&self) -> u64 {
        self.members
            .iter()
            .map(|m| m.seen.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }
}

impl Drop for TestFleet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// The version of a served secret as a number (the writers write numbered versions; Vault and
/// memory number versions 1, 2, 3 …).
pub fn version_of(secret: &StoredSecret) -> u64 {
    secret
        .meta
        .version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .expect("numbered versions")
}

async fn read_loop(
    cache: Arc<dyn KeyStore>,
    key: KeyName,
    seen: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
    regressions: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    every: Duration,
) {
    while !stop.load(Ordering::Acquire) {
        match cache.get(&key).await {
            Ok(secret) => {
                let v = version_of(&secret);
                let before = seen.fetch_max(v, Ordering::AcqRel);
                if v < before {
                    regressions.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(err) => {
                // Only counted once a value has been served: before the first value there is
                // no cached value to fall back on.
                if seen.load(Ordering::Acquire) > 0 {
                    eprintln!("caller error with a cached value: {err}");
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        tokio::time::sleep(every).await;
    }
}
