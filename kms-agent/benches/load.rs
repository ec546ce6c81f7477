//! Load benchmark of the agent binary: cache-hit latency at a fixed rate (open loop,
//! coordinated-omission-correct) and saturation throughput, over loopback TCP and over the
//! Unix socket, with the agent's resident memory holding 1,000 cached secrets.
//!
//! ```sh
//! source /tmp/peers.env        # or scripts/test's peers: the secrets live in OpenBao
//! cargo bench -p kms-agent --bench load
//! ```
//!
//! The agent is the release binary in its own process, serving a Vault store with a cache;
//! 1,000 secrets (`agent-bench/s0000` … `s0999`, written once) are prefetched at start and
//! read once more over HTTP, so every measured request is a cache hit.
//!
//! The load generator is open loop, as wrk2 and oha's `-q` are: each connection has a
//! schedule (request `i` is due at `start + i / rate_per_connection`, connections offset
//! evenly) and a request's latency is measured from when it was due, not from when it was
//! sent, so a stall of the agent counts against every request it delayed (no coordinated
//! omission). Each connection is an OS thread with a blocking socket and a minimal HTTP/1.1
//! client (status line, `Content-Length`, body; every answer checked for 200 and a body), so
//! no async executor sits between the socket and the clock; the threads' timer slack is 1 ns
//! so that sleeping until a request is due does not add the kernel's default 50 µs.
//!
//! Environment (all optional): `KMS_LOAD_RATE` (requests/s, default 10000),
//! `KMS_LOAD_SECONDS` (each measured run, default 10), `KMS_LOAD_CONNECTIONS` (fixed rate,
//! default 10), `KMS_LOAD_SATURATION_CONNECTIONS` (default 16), `KMS_LOAD_RUNS` (repetitions,
//! default 3; every run is printed), `KMS_LOAD_AGENT` (another agent binary).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kms::KeyStoreExt;

const TOKEN: &str = "bench-token-5d1e8b";
const SECRETS: usize = 1000;
const PREFIX: &str = "agent-bench";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Debug)]
enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

trait Conn: Read + Write + Send {}
impl<T: Read + Write + Send> Conn for T {}

impl Target {
    fn connect(&self) -> Box<dyn Conn> {
        match self {
            Self::Tcp(a) => {
                let s = TcpStream::connect(a).expect("connect");
                s.set_nodelay(true).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                Box::new(s)
            }
            Self::Unix(p) => {
                let s = UnixStream::connect(p).expect("connect");
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                Box::new(s)
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Tcp(_) => "TCP",
            Self::Unix(_) => "Unix",
        }
    }
}

/// The requests, one per secret, rendered once.
fn requests() -> Vec<Vec<u8>> {
    (0..SECRETS)
        .map(|i| {
            format!(
                "GET /secretsmanager/get?secretId=s{i:04} HTTP/1.1\r\nHost: localhost\r\n\
                 X-Aws-Parameters-Secrets-Token: {TOKEN}\r\n\r\n"
            )
            .into_bytes()
        })
        .collect()
}

/// A keep-alive HTTP/1.1 connection reading `Content-Length` answers.
struct Client {
    conn: Box<dyn Conn>,
    buf: Vec<u8>,
    filled: usize,
}

impl Client {
    fn new(target: &Target) -> Self {
        Self {
            conn: target.connect(),
            buf: vec![0; 64 * 1024],
            filled: 0,
        }
    }

    /// Sends `req` and reads the whole answer; panics unless it is a 200 with a body.
    fn call(&mut self, req: &[u8]) {
        self.conn.write_all(req).expect("write");
        loop {
            if let Some(end) = find(&self.buf[..self.filled], b"\r\n\r\n") {
                let head = &self.buf[..end];
                assert!(
                    head.starts_with(b"HTTP/1.1 200 "),
                    "answer: {}",
                    String::from_utf8_lossy(head)
                );
                let len = content_length(head).expect("a Content-Length");
                assert!(len > 0, "an empty body");
                let total = end + 4 + len;
                while self.filled < total {
                    let n = self.conn.read(&mut self.buf[self.filled..]).expect("read");
                    assert!(n > 0, "the agent closed the connection");
                    self.filled += n;
                }
                self.buf.copy_within(total..self.filled, 0);
                self.filled -= total;
                return;
            }
            let n = self.conn.read(&mut self.buf[self.filled..]).expect("read");
            assert!(n > 0, "the agent closed the connection");
            self.filled += n;
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(head).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

/// Sets this thread's timer slack to 1 ns (Linux 4.6+: a thread may set its own), so that
/// sleeping until a request is due wakes within microseconds instead of up to 50 µs late.
fn precise_sleep_slack() {
    // `/proc/thread-self` links to `<pid>/task/<tid>`; `/proc/<tid>/timerslack_ns` is the
    // thread's own.
    let written = std::fs::read_link("/proc/thread-self").and_then(|link| {
        let tid = link.file_name().unwrap_or_default().to_owned();
        std::fs::write(Path::new("/proc").join(tid).join("timerslack_ns"), "1")
    });
    if let Err(e) = written {
        eprintln!("timer slack left at its default ({e}): sleeps may wake up to 50 µs late");
    }
}

struct Latencies {
    /// From when each request was due (coordinated-omission-correct), nanoseconds.
    due: Vec<u64>,
    /// From when each request was sent (service time), nanoseconds.
    sent: Vec<u64>,
    /// Requests sent later than 100 µs after they were due (the generator or the agent
    /// behind).
    late: usize,
}

/// `rate` requests/s over `connections` connections for `seconds`, open loop.
fn fixed_rate(target: &Target, rate: f64, connections: usize, seconds: f64) -> Latencies {
    let reqs = Arc::new(requests());
    let per_conn = rate / connections as f64;
    let period = Duration::from_secs_f64(1.0 / per_conn);
    let count = (per_conn * seconds) as usize;
    let start = Instant::now() + Duration::from_millis(50);
    let threads: Vec<_> = (0..connections)
        .map(|c| {
            let target = target.clone();
            let reqs = reqs.clone();
            std::thread::spawn(move || {
                precise_sleep_slack();
                let mut client = Client::new(&target);
                let offset = period.mul_f64(c as f64 / connections as f64);
                let mut out = Latencies {
                    due: Vec::with_capacity(count),
                    sent: Vec::with_capacity(count),
                    late: 0,
                };
                for i in 0..count {
                    let due = start + offset + period * i as u32;
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    let sent = Instant::now();
                    if sent.duration_since(due) > Duration::from_micros(100) {
                        out.late += 1;
                    }
                    client.call(&reqs[(c * 7919 + i) % SECRETS]);
                    let done = Instant::now();
                    out.due.push(done.duration_since(due).as_nanos() as u64);
                    out.sent.push(done.duration_since(sent).as_nanos() as u64);
                }
                out
            })
        })
        .collect();
    let mut all = Latencies {
        due: Vec::new(),
        sent: Vec::new(),
        late: 0,
    };
    for t in threads {
        let l = t.join().expect("a load thread failed");
        all.due.extend(l.due);
        all.sent.extend(l.sent);
        all.late += l.late;
    }
    all.due.sort_unstable();
    all.sent.sort_unstable();
    all
}

/// Closed loop: `connections` connections sending back to back for `seconds`.
fn saturation(target: &Target, connections: usize, seconds: f64) -> f64 {
    let reqs = Arc::new(requests());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let threads: Vec<_> = (0..connections)
        .map(|c| {
            let (target, reqs, stop) = (target.clone(), reqs.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut client = Client::new(&target);
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    client.call(&reqs[(c * 7919 + n) % SECRETS]);
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    total as f64 / started.elapsed().as_secs_f64()
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn vault_store_toml() -> String {
    let addr = std::env::var("KMS_TEST_VAULT_ADDR").expect(
        "KMS_TEST_VAULT_ADDR is not set: the secrets live in OpenBao (`source /tmp/peers.env`)",
    );
    assert!(
        std::env::var_os("KMS_TEST_VAULT_TOKEN").is_some(),
        "KMS_TEST_VAULT_TOKEN is not set"
    );
    format!(
        "[stores.vault.vault]\naddress = \"{addr}\"\nprefix = \"{PREFIX}\"\n\
         auth.token = \"env:KMS_TEST_VAULT_TOKEN\"\n"
    )
}

/// Writes the 1,000 secrets unless the last one is there already.
async fn seed() {
    let store = kms::Config::from_toml_str(&vault_store_toml())
        .unwrap()
        .open("vault")
        .await
        .expect("the OpenBao store");
    let last = format!("s{:04}", SECRETS - 1);
    if store.get_value(&last).await.is_ok() {
        return;
    }
    for i in 0..SECRETS {
        let value = format!(
            "{{\"username\":\"svc{i:04}\",\"password\":\"{:032x}\"}}",
            fastrand::u128(..)
        );
        store.put(&format!("s{i:04}"), value).await.unwrap();
    }
}

struct AgentProc {
    child: Child,
    tcp: SocketAddr,
    unix: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_agent(bin: &Path) -> AgentProc {
    let dir = tempfile::tempdir().unwrap();
    let unix = dir.path().join("agent.sock");
    let prefetch: Vec<String> = (0..SECRETS)
        .map(|i| format!("{{ secret_id = \"s{i:04}\" }}"))
        .collect();
    let config = format!(
        "default = \"vault\"\n{}[stores.vault.cache]\nttl = \"1h\"\njitter = 0.0\n\
         [logging]\nlog_level = \"WARN\"\n\
         [agent.tcp]\naddress = \"127.0.0.1:0\"\n[agent.unix]\npath = \"{}\"\nmode = \"0600\"\n\
         [capabilities.secrets_manager.prefetch]\ncache_buffer_ratio = 1.0\nsecrets = [{}]\n",
        vault_store_toml(),
        unix.display(),
        prefetch.join(", ")
    );
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(bin)
        .arg("--config")
        .arg(&path)
        .env("AWS_TOKEN", TOKEN)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the kms-agent binary");
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut tcp = None;
    for line in std::io::BufRead::lines(out) {
        let line = line.unwrap();
        if let Some(a) = line.strip_prefix("kms-agent listening on http://") {
            tcp = Some(a.parse().unwrap());
            break;
        }
    }
    AgentProc {
        child,
        tcp: tcp.expect("the agent did not start"),
        unix,
        _dir: dir,
    }
}

fn wait_ready(target: &Target) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut c = target.connect();
        c.write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut s = String::new();
        let _ = c.read_to_string(&mut s);
        if s.starts_with("HTTP/1.1 200 ") {
            return;
        }
        assert!(Instant::now() < deadline, "never ready: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument (a filter from `cargo test`) skips.
    if std::env::args().skip(1).any(|a| a != "--bench") {
        return;
    }
    let bin = std::env::var("KMS_LOAD_AGENT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_BIN_EXE_kms-agent")));
    let rate: f64 = env_or("KMS_LOAD_RATE", 10_000.0);
    let seconds: f64 = env_or("KMS_LOAD_SECONDS", 10.0);
    let connections: usize = env_or("KMS_LOAD_CONNECTIONS", 10);
    let sat_connections: usize = env_or("KMS_LOAD_SATURATION_CONNECTIONS", 16);
    let runs: usize = env_or("KMS_LOAD_RUNS", 3);

    tokio::runtime::Runtime::new().unwrap().block_on(seed());
    let agent = start_agent(&bin);
    let pid = agent.child.id();
    let tcp = Target::Tcp(agent.tcp);
    let unix = Target::Unix(agent.unix.clone());
    wait_ready(&tcp);
    let (rss0, _) = rss_kib(pid);
    // Every secret read once more over HTTP: all 1,000 are cache hits from here on.
    let mut c = Client::new(&tcp);
    for r in requests() {
        c.call(&r);
    }
    drop(c);
    let (rss1, _) = rss_kib(pid);
    println!(
        "agent {} (pid {pid}), {SECRETS} secrets cached; RSS after the prefetch {:.1} MiB, after reading each once {:.1} MiB",
        bin.display(),
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0
    );
    println!(
        "fixed rate {rate} req/s over {connections} connections, {seconds} s per run, {runs} runs; \
         latency from when each request was due (service time from when it was sent)"
    );
    for target in [&tcp, &unix] {
        // Warm-up: connections, allocator, branch predictors.
        fixed_rate(target, rate, connections, 2.0);
        for run in 1..=runs {
            let load = load_average();
            let l = fixed_rate(target, rate, connections, seconds);
            println!(
                "{:4} run {run}: p50 {:7.1} µs  p90 {:7.1} µs  p99 {:7.1} µs  p99.9 {:7.1} µs  max {:8.1} µs | service p50 {:6.1} µs p99 {:7.1} µs | {} requests, {} sent >100 µs late | load {load}",
                target.name(),
                pct(&l.due, 0.50),
                pct(&l.due, 0.90),
                pct(&l.due, 0.99),
                pct(&l.due, 0.999),
                pct(&l.due, 1.0),
                pct(&l.sent, 0.50),
                pct(&l.sent, 0.99),
                l.due.len(),
                l.late,
            );
        }
    }
    println!("saturation: {sat_connections} connections back to back, {seconds} s per run");
    for target in [&tcp, &unix] {
        for run in 1..=runs {
            let load = load_average();
            let rps = saturation(target, sat_connections, seconds);
            println!(
                "{:4} run {run}: {rps:9.0} req/s | load {load}",
                target.name()
            );
        }
    }
    let (rss, hwm) = rss_kib(pid);
    println!(
        "agent RSS at the end {:.1} MiB (peak {:.1} MiB)",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
}
