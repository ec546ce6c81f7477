//! The AWS-compatible API over the kernel keyring (no versions, no ARN of its own). Needs the
//! keyring session (`KMS_TEST_KEYUTILS`): run under `dbus-run-session -- bash
//! kms-backend-keyring/scripts/keyring-session.sh cargo nextest run -p kms-agent`
//! (scripts/test does). Fails, never skips, without it.

use kms::KeyStoreExt;

use crate::common::{TCP0, TestAgent, unique};

#[tokio::test]
async fn the_aws_api_over_the_kernel_keyring() {
    assert!(
        std::env::var_os("KMS_TEST_KEYUTILS").is_some(),
        "KMS_TEST_KEYUTILS is not set: this test needs a kernel session keyring. Run it under \
         `dbus-run-session -- bash kms-backend-keyring/scripts/keyring-session.sh cargo nextest run -p kms-agent`"
    );
    let dir = tempfile::tempdir().unwrap();
    let service = unique("kms-agent-keyring");
    let a = TestAgent::start(&format!(
        "[stores.k.keyring]\nservice = \"{service}\"\nplatform_store = \"keyutils\"\nlock_file = \"{}\"\n{TCP0}",
        dir.path().join("k.lock").display()
    ))
    .await;
    a.store("k")
        .put("app/token", "from-the-keyring")
        .await
        .unwrap();
    let v = a.get("/secretsmanager/get?secretId=app/token").await.json();
    assert_eq!(v["SecretString"], "from-the-keyring");
    assert_eq!(
        v["ARN"],
        "arn:kms:secretsmanager:k:000000000000:secret:app/token"
    );
    assert!(
        v["VersionId"].is_null(),
        "the keyring keeps no versions: {v}"
    );
    assert_eq!(v["VersionStages"], serde_json::json!(["AWSCURRENT"]));
    let r = a
        .get("/secretsmanager/get?secretId=app/token&versionStage=AWSPREVIOUS")
        .await;
    assert_eq!(
        (r.status, r.json()["__type"].as_str()),
        (400, Some("ResourceNotFoundException"))
    );
    let r = a
        .get("/secretsmanager/get?secretId=app/token&versionId=1")
        .await;
    assert_eq!(
        (r.status, r.json()["__type"].as_str()),
        (400, Some("InvalidRequestException"))
    );
    a.store("k").delete("app/token").await.unwrap();
}
