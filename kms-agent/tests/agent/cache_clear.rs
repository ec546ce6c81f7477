//! `POST /kms/v1/cache/clear`: one key, one store, every store; the next read goes to the
//! backend (a Vault secret changed behind the agent's cache); POST only, token required.

use kms::KeyStoreExt;

use crate::common::{TCP0, TestAgent, aws_token, open_beside, unique, vault_addr, vault_store};

#[tokio::test]
async fn clearing_the_cache_makes_the_next_read_reach_the_backend() {
    let prefix = unique("agent-cache-clear");
    let vault = vault_store("vault", &prefix, &vault_addr(), "");
    let behind = open_beside(&vault, "vault").await;
    for k in ["k1", "k2"] {
        behind.put(k, format!("{k}-one")).await.unwrap();
    }
    let a = TestAgent::start(&format!(
        "default = \"vault\"\n{vault}[stores.vault.cache]\nttl = \"1h\"\n[stores.mem.memory]\n{TCP0}"
    ))
    .await;
    let value = async |a: &TestAgent, k: &str| {
        a.get(&format!("/kms/v1/secrets/{k}?format=raw"))
            .await
            .text()
    };
    let post = async |a: &TestAgent, path: &str| a.request("POST", path, &aws_token()).await;
    for k in ["k1", "k2"] {
        assert_eq!(value(&a, k).await, format!("{k}-one"));
        behind.put(k, format!("{k}-two")).await.unwrap();
        assert_eq!(value(&a, k).await, format!("{k}-one"), "cached");
    }

    // One key of the default store.
    let r = post(&a, "/kms/v1/cache/clear?key=k1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["cleared"], serde_json::json!(["vault"]));
    assert_eq!(v["key"], "k1");
    assert_eq!(value(&a, "k1").await, "k1-two", "read from the backend");
    assert_eq!(value(&a, "k2").await, "k2-one", "another key stays cached");

    // One store, every key.
    let r = post(&a, "/kms/v1/stores/vault/cache/clear").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["key"], serde_json::Value::Null);
    assert_eq!(value(&a, "k2").await, "k2-two");

    // Every store: the one without a cache is said to have none.
    behind.put("k1", "k1-three").await.unwrap();
    let v = post(&a, "/kms/v1/cache/clear").await.json();
    assert_eq!(v["cleared"], serde_json::json!(["vault"]));
    assert_eq!(v["uncached"], serde_json::json!(["mem"]));
    assert_eq!(value(&a, "k1").await, "k1-three");

    // Refusals: no such store, a bad parameter, GET, no token.
    assert_eq!(
        post(&a, "/kms/v1/stores/nope/cache/clear").await.status,
        404
    );
    assert_eq!(post(&a, "/kms/v1/cache/clear?keys=k1").await.status, 400);
    assert_eq!(a.get("/kms/v1/cache/clear").await.status, 405);
    assert_eq!(
        a.request("POST", "/kms/v1/cache/clear", &[]).await.status,
        403
    );
    // POST is only for the cache clear.
    assert_eq!(post(&a, "/kms/v1/secrets/k1").await.status, 405);

    let m = a.metrics();
    for line in [
        "kms_agent_requests_total{route=\"kms_cache_clear\",status=\"200\"} 3",
        "kms_agent_requests_total{route=\"kms_cache_clear\",status=\"404\"} 1",
        "kms_agent_requests_total{route=\"kms_cache_clear\",status=\"405\"} 1",
        "kms_agent_requests_refused_total{reason=\"method\"} 2",
        "kms_agent_requests_refused_total{reason=\"missing_token\"} 1",
    ] {
        assert!(m.contains(line), "{line} not in\n{m}");
    }
    assert!(a.stop().await);
}
