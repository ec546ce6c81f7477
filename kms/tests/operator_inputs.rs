//! Inputs operators tried, each held to its right answer: URI decoding, the `VAULT_*`
//! precedence, two stores that must not share an identity, serving health and metrics from
//! what `Opener::open` returns, and the README's recommended URI surviving an outage.

mod common;

use common::fake_vault::FakeVault;
use common::http::Request;
use kms::{ErrorKind, KeyStoreExt, MetricsRegistry, Opener};
use serde_json::json;

fn login_body(fv: &FakeVault) -> serde_json::Value {
    let login: Vec<Request> = fv.api_requests("auth/approle/login");
    serde_json::from_slice(&login[0].body).unwrap()
}

#[tokio::test]
async fn a_plus_is_a_plus_and_escapes_are_rfc_3986() {
    let fv = FakeVault::start().await;
    kms::open(&format!(
        "vault+http://{}/secret?auth.method=approle&auth.role_id=ab+cd&auth.secret_id=s%2Bt%20u%25",
        fv.authority()
    ))
    .await
    .unwrap();
    assert_eq!(
        login_body(&fv),
        json!({ "role_id": "ab+cd", "secret_id": "s+t u%" })
    );
}

/// `VAULT_ADDR`, `VAULT_TOKEN` and `VAULT_NAMESPACE` fill what no configuration source set:
/// explicit (a URI) > `KMS_STORES__…` > the file > `VAULT_…` > nothing. The facade reads the
/// process environment, so a child process of this test binary opens the stores with the
/// variables set, against fake Vaults this process runs.
#[tokio::test(flavor = "multi_thread")]
async fn vault_variables_come_last_in_one_precedence() {
    const CHILD: &str = "KMS_TEST_VAULT_PRECEDENCE_CHILD";
    if let Ok(explicit) = std::env::var(CHILD) {
        let uri = format!("vault+{explicit}/secret?auth.token=tok-explicit");
        kms::open(&uri)
            .await
            .unwrap()
            .put("k", "explicit")
            .await
            .unwrap();
        let config = kms::Config::from_env().unwrap();
        for store in ["t", "u", "v"] {
            config
                .open(store)
                .await
                .unwrap()
                .put("k", store)
                .await
                .unwrap();
        }
        println!("child opened every store");
        return;
    }
    let explicit = FakeVault::start().await;
    let from_kms_env = FakeVault::start().await;
    let from_file = FakeVault::start().await;
    let from_vault_env = FakeVault::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kms.toml");
    std::fs::write(
        &file,
        format!(
            "[stores.t.vault]\naddress = \"{0}\"\n\
             [stores.u.vault]\naddress = \"{0}\"\nauth.token = \"tok-file\"\n\
             [stores.v.vault]\nmount = \"secret\"\n",
            from_file.url()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child
        .args([
            "--exact",
            "vault_variables_come_last_in_one_precedence",
            "--nocapture",
        ])
        .env(CHILD, explicit.url())
        .env("KMS_CONFIG", &file)
        .env("KMS_STORES__T__VAULT__ADDRESS", from_kms_env.url())
        .env("VAULT_ADDR", from_vault_env.url())
        .env("VAULT_TOKEN", "tok-vault")
        .env("VAULT_NAMESPACE", "ns-vault")
        .env_remove("VAULT_CACERT");
    let out = tokio::task::spawn_blocking(move || child.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("child opened every store"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // (server, the token every request carried, the data written there)
    for (fv, token, written) in [
        (&explicit, "tok-explicit", "explicit"),
        (&from_kms_env, "tok-vault", "t"),
        (&from_file, "tok-file", "u"),
        (&from_vault_env, "tok-vault", "v"),
    ] {
        let requests: Vec<Request> = fv
            .requests()
            .into_iter()
            .filter(|r| r.path != "/v1/sys/health")
            .collect();
        assert!(!requests.is_empty(), "{written}: no request");
        for r in &requests {
            assert_eq!(r.header("x-vault-token"), Some(token), "{written}: {r:?}");
            // No source set a namespace: VAULT_NAMESPACE fills it everywhere.
            assert_eq!(r.header("x-vault-namespace"), Some("ns-vault"), "{written}");
        }
        let value = fv.data("secret/k").unwrap()["value"].clone();
        assert_eq!(value, written, "{written}");
    }
}

#[tokio::test]
async fn stores_that_differ_never_share_a_label_set() {
    let fv = FakeVault::start().await;
    let registry = MetricsRegistry::new();
    let opener = Opener::new().metrics_registry(registry.clone());
    let ns = |n: &str, extra: &str| {
        format!(
            "vault+http://{}/secret?auth.token=t&namespace={n}&metrics.prefix=fx_ids&metrics.health_probe=off{extra}",
            fv.authority()
        )
    };
    let a = opener.open(&ns("a", "")).await.unwrap();
    // The same configuration again is the same store: it shares its labels.
    opener.open(&ns("a", "")).await.unwrap();
    // Another namespace under the same default label is refused, naming the option to set.
    let err = opener.open(&ns("b", "")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    assert!(
        err.message().contains("`metrics.store`")
            && err.message().contains("store=\"vault\"")
            && err.message().contains("fx_ids"),
        "{err}"
    );
    // An explicit label taken by another store is refused too; a label of its own works.
    let err = opener
        .open(&ns("c", "&metrics.store=vault"))
        .await
        .unwrap_err();
    assert!(err.message().contains("another `metrics.store`"), "{err}");
    let b = opener
        .open(&ns("b", "&metrics.store=team-b"))
        .await
        .unwrap();
    fv.seed("secret/k", json!({ "value": "v" }));
    a.store().get_value("k").await.unwrap();
    b.store().get_value("k").await.unwrap();
    let text = registry.encode();
    assert!(
        text.contains("store=\"vault\"") && text.contains("store=\"team-b\""),
        "{text}"
    );
    // Another registry has its own label sets.
    Opener::new()
        .metrics_registry(MetricsRegistry::new())
        .open(&ns("b", ""))
        .await
        .unwrap();
}

#[tokio::test]
async fn health_and_metrics_come_from_what_open_returns() {
    let stack = Opener::new()
        .metrics_registry(MetricsRegistry::new())
        .open("memory://?metrics.prefix=fx_serve&metrics.health_probe=50ms&cache.ttl=5m")
        .await
        .unwrap();
    stack.store().put("k", "v").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let report = stack.health_report().unwrap();
    assert!(report.is_ready(), "{}", report.to_json());
    assert_eq!(report.backends[0].up, Some(true), "{}", report.to_json());
    assert!(report.to_json().contains("\"status\": \"ok\""));
    let text = stack.metrics_text().unwrap();
    assert!(text.contains("fx_serve_key_operations_total{"), "{text}");
    assert!(text.ends_with("# EOF\n"), "OpenMetrics text");
    assert!(stack.metrics_registry().is_some());
    // Without `metrics` there is nothing to report.
    let bare = Opener::new().open("memory://").await.unwrap();
    assert!(bare.health_report().is_none() && bare.metrics_text().is_none());
}

const ROOT_README: &str = include_str!("../../README.md");

/// The README's recommended production URI keeps serving through an outage longer than its
/// cache TTL: it turns stale-if-error on.
#[tokio::test]
async fn the_recommended_uri_survives_an_outage_longer_than_the_ttl() {
    let recommended = ROOT_README
        .lines()
        .find(|l| l.contains("\"vault+https://vault.example:8200/secret?"))
        .expect("the README recommends a Vault URI")
        .trim()
        .trim_matches(|c| c == '"' || c == ',');
    let query = recommended.split_once('?').unwrap().1;
    assert!(query.contains("cache.stale_if_error="), "{query}");
    // The same options over a fake Vault, with the TTL shortened to make the outage longer.
    let fv = FakeVault::start().await;
    fv.seed("secret/k", json!({ "value": "v" }));
    let query = query
        .replace("env:VAULT_TOKEN", "t")
        .replace("cache.ttl=5m", "cache.ttl=200ms");
    let stack = Opener::new()
        .metrics_registry(MetricsRegistry::new())
        .open(&format!("vault+http://{}/secret?{query}", fv.authority()))
        .await
        .unwrap();
    stack.store().get_value("k").await.unwrap();
    fv.fail_with(Some(503));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let v = stack.store().get_value("k").await.unwrap();
    assert_eq!(v.expose_str().unwrap(), "v");
}
