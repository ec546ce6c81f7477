//! The AWS Secrets Manager Agent's API, route by route and status by status, over memory
//! stores (so these need no peer).

use kms::KeyStoreExt;

use crate::common::{TCP0, TestAgent, aws_token};

fn config() -> String {
    format!("default = \"mem\"\n[stores.mem.memory]\n[stores.other.memory]\n{TCP0}")
}

async fn seeded() -> TestAgent {
    let a = TestAgent::start(&config()).await;
    a.store("mem").put("MyTest", "hunter2").await.unwrap();
    a
}

#[tokio::test]
async fn ping_needs_no_token_but_get() {
    let a = TestAgent::start(&config()).await;
    let r = a.request("GET", "/ping", &[]).await;
    assert_eq!((r.status, r.text().as_str()), (200, "healthy"));
    let r = a.request("POST", "/ping", &[]).await;
    assert_eq!((r.status, r.text().as_str()), (405, "Not allowed"));
}

#[tokio::test]
async fn query_form_answers_get_secret_value_json() {
    let a = seeded().await;
    let r = a.get("/secretsmanager/get?secretId=MyTest").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["cache-control"], "no-store");
    let v = r.json();
    assert_eq!(
        v["ARN"],
        "arn:kms:secretsmanager:mem:000000000000:secret:MyTest"
    );
    assert_eq!(v["Name"], "MyTest");
    assert_eq!(v["VersionId"], "1");
    assert_eq!(v["SecretString"], "hunter2");
    assert_eq!(v["VersionStages"], serde_json::json!(["AWSCURRENT"]));
    let created: f64 = v["CreatedDate"].as_str().unwrap().parse().unwrap();
    assert!(created > 1.6e9, "{created}");
    assert_eq!(
        v.as_object().unwrap().keys().collect::<Vec<_>>().len(),
        6,
        "exactly the AWS agent's fields: {v}"
    );
}

#[tokio::test]
async fn path_form_and_the_vault_token_header() {
    let a = seeded().await;
    let r = a.get("/v1/MyTest").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["SecretString"], "hunter2");
    let r = a
        .request(
            "GET",
            "/v1/MyTest",
            &[("X-Vault-Token", crate::common::TOKEN)],
        )
        .await;
    assert_eq!(r.status, 200);
    a.store("mem").put("app/db/password", "pw").await.unwrap();
    let r = a.get("/v1/app/db/password").await;
    assert_eq!(r.json()["Name"], "app/db/password");
}

#[tokio::test]
async fn a_missing_secret_is_resource_not_found() {
    let a = seeded().await;
    for path in ["/secretsmanager/get?secretId=Nope", "/v1/Nope"] {
        let r = a.get(path).await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.body,
            r#"{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}"#
        );
    }
}

#[tokio::test]
async fn malformed_requests_get_the_aws_agents_400s() {
    let a = seeded().await;
    for (path, text) in [
        ("/secretsmanager/get", "missing parameter secretId"),
        (
            "/secretsmanager/get?versionStage=AWSPENDING",
            "missing parameter secretId",
        ),
        (
            "/secretsmanager/get?secretId=MyTest&abc=1",
            "unknown parameter: abc",
        ),
        ("/v1/MyTest?abc=1", "unknown parameter: abc"),
        (
            "/secretsmanager/get?secretId=MyTest&refreshNow=123",
            "invalid refreshNow value",
        ),
        ("/v1/", "missing secret ID"),
        (
            "/secretsmanager/get?secretId=MyTest&roleArn=not-a-valid-arn",
            "invalid roleArn format, expected arn:<partition>:iam::<account>:role/<name>",
        ),
    ] {
        let r = a.get(path).await;
        assert_eq!((r.status, r.text().as_str()), (400, text), "{path}");
    }
    // A well-formed roleArn: refused, role chaining is not supported.
    let r = a
        .get("/secretsmanager/get?secretId=MyTest&roleArn=arn:aws:iam::123456789012:role/R")
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["__type"], "InvalidParameterException");
    // A name no store can hold.
    let r = a.get("/secretsmanager/get?secretId=..%2Fetc").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["__type"], "InvalidParameterException");
}

#[tokio::test]
async fn unknown_paths_are_404_and_other_methods_405() {
    let a = seeded().await;
    let r = a.get("/pong").await;
    assert_eq!((r.status, r.text().as_str()), (404, "Not found"));
    for method in ["POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"] {
        for path in ["/secretsmanager/get?secretId=MyTest", "/v1/MyTest"] {
            let r = a.request(method, path, &aws_token()).await;
            assert_eq!(r.status, 405, "{method} {path}");
        }
    }
}

#[tokio::test]
async fn versions_and_staging_labels() {
    let a = seeded().await;
    a.store("mem").put("MyTest", "hunter3").await.unwrap();
    let v = a
        .get("/secretsmanager/get?secretId=MyTest&versionId=1")
        .await
        .json();
    assert_eq!(
        (v["SecretString"].as_str(), v["VersionStages"].clone()),
        (Some("hunter2"), serde_json::json!(["AWSPREVIOUS"]))
    );
    let v = a
        .get("/secretsmanager/get?secretId=MyTest&versionId=2")
        .await
        .json();
    assert_eq!(v["VersionStages"], serde_json::json!(["AWSCURRENT"]));
    let v = a
        .get("/secretsmanager/get?secretId=MyTest&versionStage=AWSPREVIOUS")
        .await
        .json();
    assert_eq!(
        (v["SecretString"].as_str(), v["VersionId"].as_str()),
        (Some("hunter2"), Some("1"))
    );
    let v = a.get("/v1/MyTest?versionStage=AWSCURRENT").await.json();
    assert_eq!(v["SecretString"], "hunter3");
    let v = a
        .get("/secretsmanager/get?secretId=MyTest&versionId=2&versionStage=AWSCURRENT")
        .await
        .json();
    assert_eq!(v["SecretString"], "hunter3");

    let r = a
        .get("/secretsmanager/get?secretId=MyTest&versionStage=AWSPENDING")
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "Secrets Manager can't find the specified secret value for staging label: AWSPENDING"
    );
    let r = a
        .get("/secretsmanager/get?secretId=MyTest&versionId=9")
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["__type"], "ResourceNotFoundException");
    assert_eq!(
        r.json()["message"],
        "Secrets Manager can't find the specified secret value for VersionId: 9"
    );
    let r = a
        .get("/secretsmanager/get?secretId=MyTest&versionId=1&versionStage=AWSCURRENT")
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn binary_values_are_secret_binary() {
    let a = seeded().await;
    a.store("mem").put("bin", vec![0xffu8, 0, 1]).await.unwrap();
    let v = a.get("/secretsmanager/get?secretId=bin").await.json();
    assert_eq!(v["SecretBinary"], "/wAB");
    assert!(v.get("SecretString").is_none());
}

#[tokio::test]
async fn arns_name_stores_and_secrets() {
    let a = seeded().await;
    a.store("other").put("MyTest", "from-other").await.unwrap();
    // The ARN the agent wrote, given back.
    let arn = a.get("/secretsmanager/get?secretId=MyTest").await.json()["ARN"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        a.get(&format!("/secretsmanager/get?secretId={arn}"))
            .await
            .json()["SecretString"],
        "hunter2"
    );
    // Another store through its ARN, in both forms.
    let other = "arn:kms:secretsmanager:other:000000000000:secret:MyTest";
    assert_eq!(
        a.get(&format!("/secretsmanager/get?secretId={other}"))
            .await
            .json()["SecretString"],
        "from-other"
    );
    assert_eq!(
        a.get(&format!("/v1/{other}")).await.json()["SecretString"],
        "from-other"
    );
    // A real AWS ARN: the name, its random suffix removed, in the default store.
    let aws = "arn:aws:secretsmanager:us-east-1:123456789012:secret:MyTest-AbCdEf";
    assert_eq!(
        a.get(&format!("/secretsmanager/get?secretId={aws}"))
            .await
            .json()["SecretString"],
        "hunter2"
    );
    // A store that does not exist.
    let r = a
        .get("/secretsmanager/get?secretId=arn:kms:secretsmanager:nope:000000000000:secret:MyTest")
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["__type"], "ResourceNotFoundException");
}

#[tokio::test]
async fn without_a_default_store_names_need_an_arn() {
    let a = TestAgent::start(&format!("[stores.a.memory]\n[stores.b.memory]\n{TCP0}")).await;
    a.store("b").put("k", "v").await.unwrap();
    let r = a.get("/secretsmanager/get?secretId=k").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["__type"], "InvalidRequestException");
    let r = a
        .get("/secretsmanager/get?secretId=arn:kms:secretsmanager:b:000000000000:secret:k")
        .await;
    assert_eq!(r.json()["SecretString"], "v");
}

#[tokio::test]
async fn a_custom_prefix_and_a_disabled_capability() {
    let a = TestAgent::start(&format!(
        "[stores.mem.memory]\n[capabilities.secrets_manager]\npath_prefix = \"/secrets/\"\n{TCP0}"
    ))
    .await;
    a.store("mem").put("k", "v").await.unwrap();
    assert_eq!(a.get("/secrets/k").await.json()["SecretString"], "v");
    assert_eq!(a.get("/v1/k").await.status, 404);

    let a = TestAgent::start(&format!(
        "[stores.mem.memory]\n[capabilities.secrets_manager]\nenabled = false\n{TCP0}"
    ))
    .await;
    assert_eq!(a.get("/secretsmanager/get?secretId=k").await.status, 404);
    assert_eq!(a.get("/v1/k").await.status, 404);
    assert_eq!(a.request("GET", "/ping", &[]).await.status, 200);
}

#[tokio::test]
async fn requests_are_counted_by_route_and_status() {
    let a = seeded().await;
    a.get("/secretsmanager/get?secretId=MyTest").await;
    a.get("/v1/Nope").await;
    a.request("GET", "/ping", &[]).await;
    let m = a.agent().live().metrics();
    assert_eq!(m.requests_of("secretsmanager_get", 200), 1);
    assert_eq!(m.requests_of("secretsmanager_path", 400), 1);
    assert_eq!(m.requests_of("ping", 200), 1);
    let text = a.metrics();
    assert!(
        text.contains("kms_agent_requests_total{route=\"secretsmanager_get\",status=\"200\"} 1"),
        "{text}"
    );
}
