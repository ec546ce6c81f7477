//! End to end: the example service on 127.0.0.1, a real Prometheus (Debian's package, started
//! here) scraping it every second with the repository's alert rules loaded, traffic with
//! failures, and every dashboard query and every alert expression evaluated through
//! Prometheus' HTTP API must return data.
//!
//! Needs `KMS_TEST_PROMETHEUS_BIN` (exported by `scripts/peers/prometheus.sh`; run through
//! `scripts/test`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kms_core::fault::FaultStore;
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

/// The left side of an alert expression: the alert's threshold removed, so the query returns
/// its series whether or not the alert would fire now.
fn without_threshold(expr: &str) -> &str {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_queries_and_alert_expressions_return_data_from_a_real_prometheus() {
    let prometheus_bin = std::env::var("KMS_TEST_PROMETHEUS_BIN")
        .expect("KMS_TEST_PROMETHEUS_BIN is not set: run the suite through scripts/test (it installs Prometheus)");

    // The service, over a backend we can break.
    let backend = FaultStore::new(MemoryStore::new());
    let faults = backend.handle();
    let options = StackOptions {
        probe_interval: Duration::from_millis(500),
        cache_ttl: Duration::from_secs(1),
    };
    let state = build_state(backend, &options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, router(state)).into_future());

    // Prometheus, scraping it every second, with the alert rules loaded.
    let dir = tempfile::tempdir().unwrap();
    let prom_port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             rule_files: ['{}']\n\
             scrape_configs:\n  - job_name: kms\n    static_configs: [{{targets: ['{}']}}]\n",
            repo_root().join("monitoring/alerts.yml").display(),
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

    // Traffic for ~8 s: writes, hits, misses, not-found, an outage that opens the breaker
    // (and marks the backend down), then recovery.
    let started = Instant::now();
    let mut round = 0u32;
    while started.elapsed() < Duration::from_secs(8) {
        round += 1;
        let key = format!("{service}/keys/app/key-{}", round % 5);
        http.put(&key).body("s3cret-value").send().await.unwrap();
        for _ in 0..3 {
            http.get(&key).send().await.unwrap();
        }
        http.get(format!("{service}/keys/app/missing-{round}"))
            .send()
            .await
            .unwrap();
        if round == 10 {
            faults.fail_always(Operation::Get, ErrorKind::Unavailable);
            faults.fail_always(Operation::Health, ErrorKind::Unavailable);
        }
        if round == 30 {
            faults.clear();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The reports the service serves.
    let health: Value = http
        .get(format!("{service}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(health["backends"][0]["backend"] == "memory", "{health}");
    let summary: Value = http
        .get(format!("{service}/summary"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        summary["total_operations"].as_u64().unwrap() > 50,
        "{summary}"
    );
    assert!(
        summary["top_failure_reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["reason"] == "not_found")
    );
    let text = http
        .get(format!("{service}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !text.contains("s3cret") && !text.contains("app/key"),
        "no values or key names in metrics"
    );

    // Every dashboard query…
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
    // …and every alert expression, as Prometheus loaded it.
    let rules: Value = http
        .get(format!("{prom}/api/v1/rules"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let alerts: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert_eq!(alerts.len(), 7, "all alert rules loaded: {rules}");
    for rule in alerts {
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

    // The outage reached Prometheus: the breaker was seen open and the backend down.
    let open = query(&http, &prom, "max_over_time(kms_circuit_breaker_state[1m])").await;
    assert_eq!(open["data"]["result"][0]["value"][1], "1", "{open}");
    let down = query(&http, &prom, "min_over_time(kms_key_backend_up[1m])").await;
    assert_eq!(down["data"]["result"][0]["value"][1], "0", "{down}");
}
