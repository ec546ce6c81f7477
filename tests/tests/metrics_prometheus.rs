//! End to end: the example service on 127.0.0.1, a real Prometheus (Debian's package, started
//! here) scraping it every second with the repository's alert rules loaded, and a real outage.
//!
//! 1. Normal traffic with not-founds (10 good reads and 1 read of a missing key every 0.5 s,
//!    issue 20 input 2): **no alert** is pending or firing.
//! 2. The backend sealed (every call unavailable) while the cache keeps serving: the reads are
//!    `status="stale"` with their age on `/metrics` from the first scrape after they start;
//!    the backend down, availability, failure burst, failure ratio, circuit-breaker and
//!    serving-stale alerts **fire**; the cache hit-rate alert stays **silent** (stale serves
//!    are answers, input 10); `backend_up` reads 0 and the health report says `degraded` and
//!    ready (inputs 1, 11).
//! 3. Every dashboard query and every alert expression returns data.
//! 4. Unsealed: `backend_up` and the health report recover within a probe, and once reads
//!    load current values again the stale age is back to 0.
//!
//! The rules are loaded with every duration divided by 30 (`for: 5m` → `for: 10s`, `[10m]` →
//! `[20s]`): the expressions, labels and thresholds are the repository's, the waiting is
//! scaled; promtool (`monitoring/alerts.test.yml`) tests the real durations.
//!
//! Needs `KMS_TEST_PROMETHEUS_BIN` (exported by `scripts/peers/prometheus.sh`; run through
//! `scripts/test`).

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kms_core::fault::{FaultHandle, FaultStore};
use kms_core::{ErrorKind, MemoryStore, Operation};
use kms_examples::service::{StackOptions, build_state, router};
use serde_json::Value;

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `rules` with every duration in a range selector (`[5m]`, `[1h]`) and every `for:` divided
/// by 30, in seconds.
fn scaled_durations(rules: &str) -> String {
    fn scale(d: &str) -> Option<String> {
        let (n, unit) = d.split_at(d.len().checked_sub(1)?);
        let n: u64 = n.parse().ok()?;
        let secs = match unit {
            "s" => n,
            "m" => n * 60,
            "h" => n * 3600,
            _ => return None,
        };
        Some(format!("{}s", (secs / 30).max(1)))
    }
    let mut out = String::new();
    for line in rules.lines() {
        let mut line = line.to_owned();
        if let Some((head, d)) = line.split_once("for: ")
            && let Some(scaled) = scale(d.trim())
        {
            line = format!("{head}for: {scaled}");
        }
        let mut rebuilt = String::new();
        let mut rest = line.as_str();
        while let Some(open) = rest.find('[') {
            let Some(close) = rest[open..].find(']').map(|c| open + c) else {
                break;
            };
            let inner = &rest[open + 1..close];
            rebuilt.push_str(&rest[..=open]);
            rebuilt.push_str(&scale(inner).unwrap_or_else(|| inner.to_owned()));
            rebuilt.push(']');
            rest = &rest[close + 1..];
        }
        rebuilt.push_str(rest);
        out.push_str(&rebuilt);
        out.push('\n');
    }
    out
}

/// The left side of an alert expression: the alert's threshold removed, so the query returns
/// its series whether or not the alert would fire now.
fn without_threshold(expr: &str) -> &str {
    // A guard (`… and traffic >= 100`) is not the value: keep what comes before it.
    let expr = expr.split(" and ").next().unwrap_or(expr);
    let cut = [" > ", " < ", " == ", " >= ", " <= "]
        .iter()
        .filter_map(|op| expr.rfind(op))
        .max();
    cut.map_or(expr, |i| &expr[..i])
}

async fn query(http: &reqwest::Client, prom: &str, expr: &str) -> Value {
    let resp = http
        .get(format!("{prom}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
        .unwrap();
    resp.json().await.unwrap()
}

/// `(alertname, state)` of every pending or firing alert.
async fn alerts(http: &reqwest::Client, prom: &str) -> BTreeSet<(String, String)> {
    let answer: Value = http
        .get(format!("{prom}/api/v1/alerts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap().to_owned(),
                a["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The value of the sample `series` (name and labels, as encoded) in `/metrics` text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

async fn metrics_text(http: &reqwest::Client, service: &str) -> String {
    http.get(format!("{service}/metrics"))
        .header("accept", "text/plain")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

const STALE_READS: &str =
    r#"kms_key_operations_total{operation="get",backend="memory",store="memory",status="stale"}"#;
const STALE_AGE: &str = r#"kms_key_cache_stale_age_seconds{backend="memory",store="memory"}"#;

/// One round of traffic: 10 reads of a present key and 1 of a missing key, and a write.
async fn round(http: &reqwest::Client, service: &str, n: u32) {
    let _ = http
        .put(format!("{service}/keys/app/written-{}", n % 3))
        .body("s3cret-value")
        .send()
        .await;
    for _ in 0..10 {
        http.get(format!("{service}/keys/app/present"))
            .send()
            .await
            .unwrap();
    }
    http.get(format!("{service}/keys/app/missing"))
        .send()
        .await
        .unwrap();
}

async fn traffic_for(http: &reqwest::Client, service: &str, how_long: Duration) {
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < how_long {
        n += 1;
        round(http, service, n).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn seal(faults: &FaultHandle) {
    for op in Operation::ALL {
        faults.fail_always(op, ErrorKind::Unavailable);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_fire_in_a_real_outage_and_stay_silent_in_normal_traffic() {
    let prometheus_bin = std::env::var("KMS_TEST_PROMETHEUS_BIN")
        .expect("KMS_TEST_PROMETHEUS_BIN is not set: run the suite through scripts/test (it installs Prometheus)");

    // The service, over a backend we can break.
    let backend = FaultStore::new(MemoryStore::new());
    let faults = backend.handle();
    let options = StackOptions {
        probe_interval: Duration::from_millis(500),
        cache_ttl: Duration::from_secs(1),
        ..StackOptions::default()
    };
    let state = build_state(backend, &options).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, router(state)).into_future());

    // Prometheus, scraping it every second, with the alert rules loaded (durations scaled).
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("alerts.yml");
    std::fs::write(
        &rules,
        scaled_durations(
            &std::fs::read_to_string(repo_root().join("monitoring/alerts.yml")).unwrap(),
        ),
    )
    .unwrap();
    let prom_port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             rule_files: ['{}']\n\
             scrape_configs:\n  - job_name: kms\n    static_configs: [{{targets: ['{}']}}]\n",
            rules.display(),
            service.trim_start_matches("http://"),
        ),
    )
    .unwrap();
    let _prometheus = KillOnDrop(
        Command::new(prometheus_bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .expect("start prometheus"),
    );
    let prom = format!("http://127.0.0.1:{prom_port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !http
        .get(format!("{prom}/-/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "prometheus did not become ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 1. Normal traffic with not-founds: silence.
    http.put(format!("{service}/keys/app/present"))
        .body("s3cret-value")
        .send()
        .await
        .unwrap();
    // A rotation: the rotation panel and alerts have data, and stay silent.
    http.put(format!("{service}/keys/app/rotated"))
        .body("first")
        .send()
        .await
        .unwrap();
    let rotated = http
        .post(format!("{service}/rotate/app/rotated"))
        .send()
        .await
        .unwrap();
    assert!(rotated.status().is_success(), "{rotated:?}");
    traffic_for(&http, &service, Duration::from_secs(15)).await;
    let quiet = alerts(&http, &prom).await;
    assert!(
        quiet.is_empty(),
        "no alert in normal traffic with not-founds: {quiet:?}"
    );
    let summary: Value = http
        .get(format!("{service}/summary?timeframeHours=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(summary["timeframeHours"], 1.0, "{summary}");
    let get_rate = summary["failureRates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["operation"] == "get")
        .unwrap();
    assert_eq!(
        get_rate["failure_rate"], 0.0,
        "not found is no failure: {summary}"
    );

    let before = metrics_text(&http, &service).await;
    assert_eq!(sample(&before, STALE_READS), Some(0.0), "{before}");
    assert_eq!(sample(&before, STALE_AGE), Some(0.0), "{before}");

    // 2. The backend sealed while the cache serves.
    seal(&faults);
    let outage = Instant::now();
    // Within one round after the present key's TTL (1 s), its reads are stale, and /metrics
    // says so, with their age.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    round(&http, &service, 999).await;
    let during = metrics_text(&http, &service).await;
    let stale_reads = sample(&during, STALE_READS).unwrap();
    let stale_age = sample(&during, STALE_AGE).unwrap();
    eprintln!(
        "one round into the outage: {stale_reads} stale reads, oldest {stale_age} s past its TTL"
    );
    assert!(stale_reads >= 10.0, "{during}");
    assert!(stale_age > 0.0, "{during}");
    let expected_firing = [
        "KmsBackendDown",
        "KmsBackendAvailabilityLow",
        "KmsFailureBurst",
        "KmsFailureRatioHigh",
        "KmsCircuitBreakerOpen",
        "KmsServingStale",
    ];
    let mut n = 1000;
    let firing = loop {
        n += 1;
        round(&http, &service, n).await;
        let now = alerts(&http, &prom).await;
        let firing: BTreeSet<&str> = now
            .iter()
            .filter(|(_, state)| state == "firing")
            .map(|(name, _)| name.as_str())
            .collect();
        assert!(
            !now.iter().any(|(name, _)| name == "KmsLowCacheHitRate"),
            "stale serves are answers: {now:?}"
        );
        if expected_firing.iter().all(|a| firing.contains(a)) {
            break now;
        }
        assert!(
            outage.elapsed() < Duration::from_secs(60),
            "after a minute of outage only {now:?} (expected {expected_firing:?} firing)"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // The present key was served from the cache throughout.
    let read = http
        .get(format!("{service}/keys/app/present"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200, "stale-if-error serves the cached key");
    // Readiness stays up (degraded), liveness too; the report names the error.
    let ready = http
        .get(format!("{service}/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let health: Value = ready.json().await.unwrap();
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["backends"][0]["up"], false, "{health}");
    assert!(health["version"].is_string() && health["timestamp"].is_u64());
    assert!(
        health["backends"][0]["last_error"]
            .as_str()
            .is_some_and(|m| m.contains("unavailable")),
        "{health}"
    );
    let live = http
        .get(format!("{service}/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let down = query(&http, &prom, "max_over_time(kms_key_backend_up[5s])").await;
    assert_eq!(
        down["data"]["result"][0]["value"][1], "0",
        "{down}: {firing:?}"
    );
    // The summary over the outage has the failures by operation and reason.
    let summary: Value = http
        .get(format!("{service}/summary?timeframeHours=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        summary["topFailures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["operation"] == "get"
                && (f["reason"] == "unavailable" || f["reason"] == "circuit_open")),
        "{summary}"
    );

    // /metrics honours Accept: text 0.0.4 for a plain scraper, no values or key names.
    let plain = http
        .get(format!("{service}/metrics"))
        .header("accept", "text/plain")
        .send()
        .await
        .unwrap();
    assert!(
        plain.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = plain.text().await.unwrap();
    assert!(text.contains("# TYPE kms_key_operations_total counter"));
    assert!(!text.contains("# EOF"));
    assert!(
        !text.contains("s3cret") && !text.contains("app/"),
        "no values or key names in metrics"
    );

    // 3. Every dashboard query and every alert expression returns data.
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("monitoring/dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut exprs: Vec<(String, String)> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p["targets"].as_array().unwrap().iter().map(move |t| {
                (
                    p["title"].to_string(),
                    t["expr"].as_str().unwrap().to_owned(),
                )
            })
        })
        .collect();
    let rules: Value = http
        .get(format!("{prom}/api/v1/rules"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let loaded: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert_eq!(loaded.len(), 15, "all alert rules loaded: {rules}");
    for rule in loaded {
        assert_eq!(rule["health"], "ok", "{rule}");
        exprs.push((
            rule["name"].to_string(),
            without_threshold(rule["query"].as_str().unwrap()).to_owned(),
        ));
    }
    for (name, expr) in &exprs {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answer = query(&http, &prom, expr).await;
            assert_eq!(answer["status"], "success", "{name}: {expr}: {answer}");
            if !answer["data"]["result"].as_array().unwrap().is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: `{expr}` returned no data: {answer}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    // Prometheus saw the stale reads and their age.
    let seen = query(
        &http,
        &prom,
        r#"max_over_time(kms_key_cache_stale_age_seconds[1m])"#,
    )
    .await;
    let age: f64 = seen["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(age > 0.0, "{seen}");
    let stale = query(
        &http,
        &prom,
        r#"sum(increase(kms_key_operations_total{status="stale"}[1m]))"#,
    )
    .await;
    let stale: f64 = stale["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(stale > 0.0, "no stale reads in Prometheus");

    // Recovery: the probe (beside the open breaker, every probe interval while down) sees the
    // backend again, and the health report follows it.
    faults.clear();
    let recovered = Instant::now();
    loop {
        let up = query(&http, &prom, "kms_key_backend_up").await;
        if up["data"]["result"][0]["value"][1] == "1" {
            break;
        }
        assert!(
            recovered.elapsed() < Duration::from_secs(15),
            "backend_up did not come back: {up}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let health: Value = http
        .get(format!("{service}/health/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    // Reads load current values again (once the breaker lets them through): no stale age.
    loop {
        round(&http, &service, 2000).await;
        let now = metrics_text(&http, &service).await;
        if sample(&now, STALE_AGE) == Some(0.0) {
            break;
        }
        assert!(
            recovered.elapsed() < Duration::from_secs(20),
            "still serving stale after the recovery: {now}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[test]
fn durations_are_scaled_by_thirty() {
    let rules = "        expr: rate(x[5m]) > 1 and increase(y[1h]) > 2\n        for: 10m\n        expr: z{a=\"[b]\"}\n";
    assert_eq!(
        scaled_durations(rules),
        "        expr: rate(x[10s]) > 1 and increase(y[120s]) > 2\n        for: 20s\n        expr: z{a=\"[b]\"}\n"
    );
}
