//! The agent's own API under /kms/v1/.

use kms::KeyStoreExt;

use crate::common::{TCP0, TestAgent};

async fn seeded() -> TestAgent {
    let a = TestAgent::start(&format!(
        "default = \"mem\"\n[stores.mem.memory]\n[stores.mem.cache]\nttl = \"1h\"\n[stores.other.memory]\n{TCP0}"
    ))
    .await;
    let mem = a.store("mem");
    mem.put(
        "app/db",
        r#"{"username":"app","password":"s3cret","port":5432}"#,
    )
    .await
    .unwrap();
    mem.put(
        "app/db",
        r#"{"username":"app","password":"rotated","port":5432}"#,
    )
    .await
    .unwrap();
    mem.put("bin", vec![0xffu8, 0xfe]).await.unwrap();
    a.store("other").put("k", "v").await.unwrap();
    a
}

#[tokio::test]
async fn stores_are_listed() {
    let a = seeded().await;
    let v = a.get("/kms/v1/stores").await.json();
    assert_eq!(v["default"], "mem");
    assert_eq!(v["generation"], 1);
    let stores = v["stores"].as_array().unwrap();
    assert_eq!(stores.len(), 2);
    assert_eq!(stores[0]["name"], "mem");
    assert_eq!(stores[0]["stack"], "Cache(Memory)");
    assert_eq!(stores[0]["cached"], true);
    assert_eq!(stores[0]["versions"], true);
    assert_eq!(stores[1]["default"], false);
}

#[tokio::test]
async fn a_secret_its_version_and_one_field() {
    let a = seeded().await;
    let v = a.get("/kms/v1/secrets/app/db").await.json();
    assert_eq!(v["store"], "mem");
    assert_eq!(v["name"], "app/db");
    assert_eq!(v["version"], "2");
    assert!(v["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(v["value"].as_str().unwrap().contains("rotated"));

    let v = a.get("/kms/v1/secrets/app/db?field=password").await.json();
    assert_eq!(
        (v["field"].as_str(), v["value"].as_str()),
        (Some("password"), Some("rotated"))
    );
    let v = a.get("/kms/v1/secrets/app/db?field=port").await.json();
    assert_eq!(v["value"], "5432");
    let v = a
        .get("/kms/v1/secrets/app/db?version=1&field=password")
        .await
        .json();
    assert_eq!(
        (v["version"].as_str(), v["value"].as_str()),
        (Some("1"), Some("s3cret"))
    );

    let v = a.get("/kms/v1/stores/other/secrets/k").await.json();
    assert_eq!(
        (v["store"].as_str(), v["value"].as_str()),
        (Some("other"), Some("v"))
    );
    let v = a.get("/kms/v1/secrets/bin").await.json();
    assert_eq!(v["value_base64"], "//4=");
    assert!(v.get("value").is_none());
    let v = a.get("/kms/v1/secrets/app/db?refresh=true").await.json();
    assert_eq!(v["version"], "2");
}

#[tokio::test]
async fn the_bare_value() {
    let a = seeded().await;
    let r = a
        .get("/kms/v1/secrets/app/db?field=password&format=raw")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/octet-stream");
    assert_eq!(r.headers["kms-version"], "2");
    assert_eq!(r.body, "rotated");
    let r = a.get("/kms/v1/secrets/bin?format=raw").await;
    assert_eq!(r.body.as_ref(), [0xff, 0xfe]);
}

#[tokio::test]
async fn errors_are_json_with_a_status_by_kind() {
    let a = seeded().await;
    for (path, status, kind) in [
        ("/kms/v1/secrets/nope", 404, "not_found"),
        ("/kms/v1/stores/nope/secrets/k", 404, "not_found"),
        ("/kms/v1/secrets/app/db?version=9", 404, "not_found"),
        ("/kms/v1/secrets/app/db?field=nope", 422, "invalid_data"),
        ("/kms/v1/secrets/bin?field=x", 422, "invalid_data"),
        ("/kms/v1/secrets/app/db?verison=1", 400, "invalid_input"),
        ("/kms/v1/secrets/app/db?format=xml", 400, "invalid_input"),
        ("/kms/v1/secrets/a%2F..%2Fb", 400, "invalid_input"),
        (
            "/kms/v1/stores/other/secrets/k?version=1&field=x",
            422,
            "invalid_data",
        ),
    ] {
        let r = a.get(path).await;
        assert_eq!(r.status, status, "{path}: {}", r.text());
        let v = r.json();
        assert_eq!(v["error"]["kind"], kind, "{path}: {v}");
        assert!(
            !v["error"]["message"].as_str().unwrap().contains("s3cret"),
            "{v}"
        );
    }
    assert_eq!(a.get("/kms/v1/nothing").await.status, 404);
}

#[tokio::test]
async fn health_of_every_store_and_of_one() {
    let a = seeded().await;
    let v = a.get("/kms/v1/health").await.json();
    assert_eq!(v["ready"], true);
    assert_eq!(v["generation"], 1);
    assert_eq!(v["prefetch"]["state"], "off");
    assert_eq!(v["stores"].as_array().unwrap().len(), 2);
    assert_eq!(v["stores"][0]["status"], "ok");
    let r = a.get("/kms/v1/stores/mem/health").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["default"], true);
    assert_eq!(a.get("/kms/v1/stores/nope/health").await.status, 404);
}

#[tokio::test]
async fn the_native_api_needs_the_token_too() {
    let a = seeded().await;
    assert_eq!(
        a.request("GET", "/kms/v1/secrets/app/db", &[]).await.status,
        403
    );
    assert_eq!(a.request("GET", "/kms/v1/stores", &[]).await.status, 403);
}

#[tokio::test]
async fn the_reload_endpoint_applies_the_file_or_says_why_not() {
    let base =
        format!("default = \"mem\"\n[stores.mem.memory]\n[stores.mem.cache]\nttl = \"1h\"\n{TCP0}");
    let a = TestAgent::start(&base).await;
    a.store("mem").put("k", "kept-value").await.unwrap();
    let token = crate::common::aws_token();
    let reload = async |a: &TestAgent| a.request("POST", "/kms/v1/reload", &token).await;

    let r = reload(&a).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["generation"], 2);
    assert_eq!(v["kept"], serde_json::json!(["mem"]));

    a.rewrite(&format!("{base}[stores.other.memory]\n"));
    let v = reload(&a).await.json();
    assert_eq!(v["generation"], 3);
    assert_eq!(v["added"], serde_json::json!(["other"]));
    assert_eq!(
        a.get("/kms/v1/stores").await.json()["stores"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // A broken file: 422 naming what is wrong; the previous configuration keeps serving.
    a.rewrite("[stores.mem\n");
    let r = reload(&a).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["error"]["kind"], "configuration");
    assert_eq!(
        a.get("/kms/v1/secrets/k?format=raw").await.text(),
        "kept-value"
    );
    assert_eq!(a.get("/kms/v1/stores").await.json()["generation"], 3);
    assert_eq!(a.get("/readyz").await.json()["last_reload"]["ok"], false);

    // POST only, token required.
    assert_eq!(a.get("/kms/v1/reload").await.status, 405);
    assert_eq!(a.request("POST", "/kms/v1/reload", &[]).await.status, 403);
    let m = a.metrics();
    assert!(
        m.contains("kms_agent_config_reloads_total{result=\"success\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("kms_agent_requests_total{route=\"kms_reload\",status=\"422\"} 1"),
        "{m}"
    );
}
