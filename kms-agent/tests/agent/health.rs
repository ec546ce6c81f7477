//! Liveness and readiness.

use kms::KeyStoreExt;

use crate::common::{TCP0, TestAgent};

/// An AWS Secrets Manager store nobody answers for (building it needs no I/O, so the agent
/// starts; its health probe fails as "unavailable").
fn unreachable(name: &str, cache: &str) -> String {
    format!(
        "[stores.{name}.aws]\nregion = \"us-east-1\"\nendpoint_url = \"http://127.0.0.1:9\"\n\
         access_key_id = \"testing\"\nsecret_access_key = \"testing\"\n\
         connect_timeout = \"500ms\"\noperation_timeout = \"1s\"\n{cache}"
    )
}

#[tokio::test]
async fn liveness_looks_at_nothing_but_the_process() {
    let a = TestAgent::start(&format!("{}{TCP0}", unreachable("v", ""))).await;
    let r = a.request("GET", "/healthz", &[]).await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
}

#[tokio::test]
async fn readiness_says_which_store_is_down_and_why() {
    let a = TestAgent::start(&format!(
        "default = \"mem\"\n[stores.mem.memory]\n{}{TCP0}",
        unreachable("down", "")
    ))
    .await;
    let r = a.request("GET", "/readyz", &[]).await;
    assert_eq!(r.status, 503, "{}", r.text());
    let v = r.json();
    assert_eq!(v["ready"], false);
    let stores = v["stores"].as_array().unwrap();
    let mem = stores.iter().find(|s| s["name"] == "mem").unwrap();
    assert_eq!(mem["status"], "ok");
    let down = stores.iter().find(|s| s["name"] == "down").unwrap();
    assert_eq!(down["status"], "down");
    assert_eq!(down["backend"], "aws");
    assert!(down["kind"].is_string(), "{down}");
    assert!(!down["reason"].as_str().unwrap().is_empty(), "{down}");
    // The per-store route says the same.
    assert_eq!(a.get("/kms/v1/stores/down/health").await.status, 503);
    assert_eq!(a.get("/kms/v1/stores/mem/health").await.status, 200);
}

#[tokio::test]
async fn a_cache_serving_stale_within_its_bound_keeps_the_agent_ready() {
    let a = TestAgent::start(&format!(
        "{}{TCP0}",
        unreachable(
            "down",
            "[stores.down.cache]\nttl = \"1m\"\nstale_if_error = \"1h\"\n"
        )
    ))
    .await;
    let r = a.request("GET", "/readyz", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["ready"], true);
    assert_eq!(v["stores"][0]["status"], "stale");
    assert_eq!(v["stores"][0]["stale_window_seconds"], 3660);
    assert!(v["stores"][0]["down_for_seconds"].is_u64());
}

#[tokio::test]
async fn a_failed_prefetch_still_ends_the_wait() {
    let a = TestAgent::start(&format!(
        "[stores.mem.memory]\n[capabilities.secrets_manager.prefetch]\nsecrets = [{{ secret_id = \"missing\" }}]\n{TCP0}"
    ))
    .await;
    crate::common::eventually("the prefetch finishes", async || {
        a.request("GET", "/readyz", &[]).await.status == 200
    })
    .await;
    let v = a.request("GET", "/readyz", &[]).await.json();
    assert_eq!(
        v["prefetch"],
        serde_json::json!({"state": "done", "fetched": 0, "failed": 1})
    );
    let text = a.metrics();
    assert!(
        text.contains("kms_agent_prefetch_secrets_total{result=\"failure\"} 1"),
        "{text}"
    );
    a.store("mem").put("missing", "now-here").await.unwrap();
    assert_eq!(
        a.get("/v1/missing").await.json()["SecretString"],
        "now-here"
    );
}

#[tokio::test]
async fn an_unreachable_backend_is_a_502_connection_error() {
    let a = TestAgent::start(&format!("{}{TCP0}", unreachable("down", ""))).await;
    let r = a.get("/secretsmanager/get?secretId=k").await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(
        r.body,
        r#"{"__type":"ConnectionError","message":"Read Error"}"#
    );
    let r = a.get("/kms/v1/secrets/k").await;
    assert_eq!(
        (r.status, r.json()["error"]["kind"].as_str()),
        (503, Some("unavailable"))
    );
}

#[tokio::test]
async fn slow_backends_are_504s() {
    let proxy = crate::common::Proxy::start(&crate::common::aws_endpoint()).await;
    let held = crate::common::aws_store("held", &crate::common::unique("kms-agent-slow"), "")
        .replace(&crate::common::aws_endpoint(), &proxy.url());
    // The store's own deadline: Secrets Manager's TimeoutError.
    let a = TestAgent::start(&format!(
        "{held}[stores.held.timeout]\nall = \"300ms\"\n{TCP0}"
    ))
    .await;
    let r = a.get("/secretsmanager/get?secretId=k").await;
    assert_eq!(r.status, 504);
    assert_eq!(r.body, r#"{"__type":"TimeoutError","message":"Timeout"}"#);
    // The agent's request timeout: a bare 504.
    let a = TestAgent::start(&format!(
        "{held}[agent.limits]\nrequest_timeout = \"300ms\"\n{TCP0}"
    ))
    .await;
    let r = a.get("/secretsmanager/get?secretId=k").await;
    assert_eq!(r.status, 504);
    assert!(r.body.is_empty());
    assert_eq!(
        a.agent()
            .live()
            .metrics()
            .requests_of("secretsmanager_get", 504),
        1
    );
    crate::common::eventually("nothing left in flight", async || {
        a.metrics().contains("kms_agent_requests_in_flight 0")
    })
    .await;
    proxy.release();
}
