//! The real binary: an AWS agent configuration file as it is, SIGHUP reloads, SIGTERM drains
//! in-flight requests, `--check`, and log lines that never carry a token or a value.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use kms::KeyStoreExt;
use parking_lot::Mutex;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::common::{
    Proxy, TOKEN, Target, aws_endpoint, aws_token, eventually, open_beside, send, unique,
    vault_addr, vault_store,
};

const BIN: &str = env!("CARGO_BIN_EXE_kms-agent");

pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) metrics: Option<SocketAddr>,
    stderr: Arc<Mutex<String>>,
}

impl Proc {
    pub(crate) async fn spawn(config: &Path, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "debug")
            .env("AWS_TOKEN", TOKEN)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the kms-agent binary");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err_lines.next_line().await {
                let mut s = sink.lock();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut addr, mut metrics) = (None, None);
        let wanted = env.iter().any(|(k, _)| *k == "WANT_METRICS");
        let found = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = out.next_line().await {
                if let Some(a) = line.strip_prefix("kms-agent listening on http://") {
                    addr = Some(a.parse().unwrap());
                }
                if let Some(a) = line.strip_prefix("kms-agent metrics on http://") {
                    metrics = Some(a.trim_end_matches("/metrics").parse().unwrap());
                }
                if addr.is_some() && (metrics.is_some() || !wanted) {
                    return;
                }
            }
        })
        .await;
        assert!(
            found.is_ok() && addr.is_some(),
            "the agent did not start: {}",
            stderr.lock()
        );
        Self {
            child,
            addr: addr.unwrap(),
            metrics,
            stderr,
        }
    }

    pub(crate) fn signal(&self, name: &str) {
        let pid = self.child.id().unwrap().to_string();
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub(crate) fn target(&self) -> Target {
        Target::Tcp(self.addr)
    }

    pub(crate) async fn get(&self, path: &str) -> crate::common::Reply {
        send(&self.target(), "GET", path, &aws_token()).await
    }

    pub(crate) async fn metrics(&self) -> String {
        send(
            &Target::Tcp(self.metrics.expect("a metrics listener")),
            "GET",
            "/metrics",
            &[],
        )
        .await
        .text()
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().clone()
    }

    pub(crate) async fn exit_code(mut self) -> Option<i32> {
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the agent exits")
            .unwrap()
            .code()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn an_aws_agent_configuration_file_works_as_it_is() {
    // The AWS agent's documented table, its only change the port; credentials and endpoint
    // from the environment, as the AWS SDK reads them.
    let name = unique("dropin");
    let beside = open_beside(
        &crate::common::aws_store("aws", "", "").replace("namespace = \"\"\n", ""),
        "aws",
    )
    .await;
    beside.put(&name, "drop-in-value").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_file = crate::common::write_file(dir.path(), "awssmatoken", TOKEN);
    let port = free_port();
    let config = crate::common::write_file(
        dir.path(),
        "config.toml",
        &format!(
            r#"
[logging]
log_level = "DEBUG"

[capabilities.secrets_manager]
enabled = true
http_port = {port}
region = "us-east-1"
path_prefix = "/v1/"
max_conn = 800
max_roles = 20

[capabilities.secrets_manager.cache]
ttl_seconds = 300
cache_size = 1000

[capabilities.secrets_manager.security]
ssrf_headers = ["X-Aws-Parameters-Secrets-Token", "X-Vault-Token"]
ssrf_env_variables = ["AWS_TOKEN", "AWS_SESSION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN"]
"#
        ),
    );
    let token_ref = format!("file://{}", token_file.display());
    let endpoint = aws_endpoint();
    let p = Proc::spawn(
        &config,
        &[
            ("AWS_TOKEN", &token_ref),
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    )
    .await;
    assert_eq!(p.addr, format!("127.0.0.1:{port}").parse().unwrap());
    let v = p
        .get(&format!("/secretsmanager/get?secretId={name}"))
        .await
        .json();
    assert_eq!(v["SecretString"], "drop-in-value");
    let v = p.get(&format!("/v1/{name}")).await.json();
    assert_eq!(v["Name"], name.as_str());
    assert_eq!(
        send(&p.target(), "GET", "/ping", &[]).await.text(),
        "healthy"
    );
    p.signal("TERM");
    let log = p.stderr();
    assert_eq!(p.exit_code().await, Some(0));
    assert!(!log.contains(TOKEN), "the token is in a log line:\n{log}");
    assert!(
        !log.contains("drop-in-value"),
        "a value is in a log line:\n{log}"
    );
}

#[tokio::test]
async fn sighup_reloads_keeping_unchanged_stores_and_refusing_broken_files() {
    let prefix = unique("kms-agent-tests/reload");
    let vault = vault_store("vault", &prefix, &vault_addr(), "");
    let behind = open_beside(&vault, "vault").await;
    behind.put("k", "reload-value-one").await.unwrap();
    let head = "default = \"vault\"\n[agent.tcp]\naddress = \"127.0.0.1:0\"\n[agent.metrics]\naddress = \"127.0.0.1:0\"\n";
    let with = |ttl: &str, mem: bool| {
        format!(
            "{head}{vault}[stores.vault.cache]\nttl = \"{ttl}\"\n{}",
            if mem { "[stores.mem.memory]\n" } else { "" }
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let config = crate::common::write_file(dir.path(), "agent.toml", &with("1h", true));
    let p = Proc::spawn(&config, &[("WANT_METRICS", "1")]).await;
    let value = async |p: &Proc| {
        p.get("/v1/k").await.json()["SecretString"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let reloads = async |p: &Proc, result: &str, n: u32| {
        let line = format!("kms_agent_config_reloads_total{{result=\"{result}\"}} {n}");
        eventually(&line.clone(), async || p.metrics().await.contains(&line)).await;
    };

    assert_eq!(value(&p).await, "reload-value-one");
    behind.put("k", "reload-value-two").await.unwrap();
    assert_eq!(value(&p).await, "reload-value-one", "cached");

    // The same file: every store is kept, its cache too.
    p.signal("HUP");
    reloads(&p, "success", 1).await;
    assert_eq!(
        value(&p).await,
        "reload-value-one",
        "an unchanged store keeps its cache"
    );
    assert_eq!(p.get("/kms/v1/stores").await.json()["generation"], 2);

    // A changed TTL: the store is rebuilt (a new, empty cache).
    std::fs::write(&config, with("2h", true)).unwrap();
    p.signal("HUP");
    reloads(&p, "success", 2).await;
    assert_eq!(
        value(&p).await,
        "reload-value-two",
        "a changed store is rebuilt"
    );

    // A removed store.
    std::fs::write(&config, with("2h", false)).unwrap();
    p.signal("HUP");
    reloads(&p, "success", 3).await;
    let stores = p.get("/kms/v1/stores").await.json();
    assert_eq!(stores["stores"].as_array().unwrap().len(), 1, "{stores}");
    assert_eq!(p.get("/kms/v1/stores/mem/secrets/x").await.status, 404);

    // A broken file: refused, the previous configuration keeps serving.
    std::fs::write(&config, "[stores.vault.cache\nttl = \"1h\"\n").unwrap();
    p.signal("HUP");
    reloads(&p, "failure", 1).await;
    assert!(
        p.metrics()
            .await
            .contains("kms_agent_config_last_reload_successful 0")
    );
    assert_eq!(value(&p).await, "reload-value-two");
    let ready = send(&p.target(), "GET", "/readyz", &[]).await.json();
    assert_eq!(ready["last_reload"]["ok"], false);
    assert!(
        ready["last_reload"]["error"]
            .as_str()
            .unwrap()
            .contains("invalid TOML (line 1)"),
        "{ready}"
    );

    // An unknown key: refused, named.
    std::fs::write(&config, with("2h", false).replace("ttl = ", "ttll = ")).unwrap();
    p.signal("HUP");
    reloads(&p, "failure", 2).await;
    let ready = send(&p.target(), "GET", "/readyz", &[]).await.json();
    assert!(
        ready["last_reload"]["error"]
            .as_str()
            .unwrap()
            .contains("stores.vault.cache"),
        "{ready}"
    );
    assert_eq!(value(&p).await, "reload-value-two");

    // Back to a good file.
    std::fs::write(&config, with("2h", false)).unwrap();
    p.signal("HUP");
    reloads(&p, "success", 4).await;
    assert!(
        p.metrics()
            .await
            .contains("kms_agent_config_last_reload_successful 1")
    );

    let log = p.stderr();
    assert!(log.contains("configuration reload refused"), "{log}");
    p.signal("TERM");
    assert_eq!(p.exit_code().await, Some(0));
    for secret in [TOKEN, "reload-value-one", "reload-value-two"] {
        assert!(!log.contains(secret), "{secret} is in a log line:\n{log}");
    }
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    const N: usize = 6;
    let namespace = unique("kms-agent-drain");
    let direct = crate::common::aws_store("aws", &namespace, "");
    let behind = open_beside(&direct, "aws").await;
    for i in 0..N {
        behind
            .put(&format!("k{i}"), format!("drain-{i}"))
            .await
            .unwrap();
    }
    // Every call to moto waits in the proxy until it is released.
    let proxy = Proxy::start(&aws_endpoint()).await;
    let held = direct.replace(&aws_endpoint(), &proxy.url());
    let dir = tempfile::tempdir().unwrap();
    let config = crate::common::write_file(
        dir.path(),
        "agent.toml",
        &format!(
            "[agent]\nshutdown_timeout = \"30s\"\n[agent.tcp]\naddress = \"127.0.0.1:0\"\n\
             [agent.metrics]\naddress = \"127.0.0.1:0\"\n{held}"
        ),
    );
    let p = Proc::spawn(&config, &[("WANT_METRICS", "1")]).await;
    let target = p.target();
    let requests: Vec<_> = (0..N)
        .map(|i| {
            let target = target.clone();
            tokio::spawn(
                async move { send(&target, "GET", &format!("/v1/k{i}"), &aws_token()).await },
            )
        })
        .collect();
    let in_flight = format!("kms_agent_requests_in_flight {N}");
    eventually("every request is in flight", async || {
        p.metrics().await.contains(&in_flight)
    })
    .await;

    p.signal("TERM");
    eventually("the agent stops accepting", async || {
        p.stderr().contains("draining")
    })
    .await;
    assert!(
        tokio::net::TcpStream::connect(p.addr).await.is_err(),
        "no new connection is accepted once draining"
    );
    proxy.release();
    for (i, r) in requests.into_iter().enumerate() {
        let r = r.await.unwrap();
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
        assert_eq!(r.json()["SecretString"], format!("drain-{i}"));
    }
    assert_eq!(
        p.exit_code().await,
        Some(0),
        "every connection finished within the bound"
    );
}

#[tokio::test]
async fn check_validates_without_starting() {
    let dir = tempfile::tempdir().unwrap();
    let good = crate::common::write_file(dir.path(), "good.toml", "[stores.mem.memory]\n");
    let out = Command::new(BIN)
        .args(["--check", "--config"])
        .arg(&good)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let bad = crate::common::write_file(dir.path(), "bad.toml", "[agent]\nlisten = \"x\"\n");
    let out = Command::new(BIN)
        .args(["--check", "--config"])
        .arg(&bad)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("agent.listen") && err.contains("bad.toml"),
        "{err}"
    );
    // Starting with it fails with 2.
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&bad)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // No token: refuses to start, naming the variables.
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&good)
        .env_remove("AWS_TOKEN")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no SSRF token"));
}
