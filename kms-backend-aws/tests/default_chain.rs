//! Region, credentials and endpoint from aws-config's default chain — a shared-config profile
//! and environment variables — against the moto server; no credentials, and no region.
//!
//! The chain reads the process environment, which a test cannot change safely, so the test
//! runs this same binary again as a child with the environment under test
//! (`KMS_CHAIN_CHILD` says which case) and checks that it passes.

mod common;

use std::process::Command;

use kms_backend_aws::{AwsConnection, Deletion, SecretsManagerStore};
use kms_core::{ErrorKind, KeyName, KeyStore};

const CHILD: &str = "KMS_CHAIN_CHILD";

/// Every AWS variable that could leak in from the machine running the tests.
const AWS_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
];

async fn round_trip(config: &kms_backend_aws::sdk::aws_config::SdkConfig, tag: &str) {
    let store = SecretsManagerStore::builder(config)
        .deletion(Deletion::Force)
        .unwrap()
        .build()
        .unwrap();
    store.health().await.unwrap();
    let k = KeyName::new(format!("{}/k", common::unique(tag))).unwrap();
    store.store(&k, "v".into()).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap().value.expose_secret(), b"v");
    store.remove(&k).await.unwrap();
}

/// The child's side: the environment was set up by the parent.
async fn child(case: &str) {
    match case {
        "profile" => {
            let config = AwsConnection::new().load().await.unwrap();
            assert_eq!(config.region().unwrap().as_ref(), "eu-west-1");
            round_trip(&config, "chain-profile").await;
        }
        "env" => {
            let config = AwsConnection::new().load().await.unwrap();
            assert_eq!(config.region().unwrap().as_ref(), "us-west-2");
            round_trip(&config, "chain-env").await;
        }
        "none" => {
            // No credentials anywhere: a typed error, not a hang or a panic.
            let config = AwsConnection::new()
                .region("us-east-1")
                .endpoint_url(common::endpoint())
                .load()
                .await
                .unwrap();
            let err = SecretsManagerStore::builder(&config)
                .build()
                .unwrap()
                .get(&KeyName::new("x").unwrap())
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
            assert!(err.message().contains("no credentials"), "{err}");
        }
        "noregion" => {
            // No region anywhere in the chain: a Configuration error at load, not a store
            // whose every call is "unavailable" after retries.
            let err = AwsConnection::new()
                .endpoint_url(common::endpoint())
                .load()
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
            assert!(err.message().contains("AWS_REGION"), "{err}");
        }
        other => panic!("unknown {CHILD} case {other:?}"),
    }
}

fn run_child(case: &str, env: &[(&str, String)]) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "default_chain", "--nocapture"]);
    for var in AWS_VARS {
        cmd.env_remove(var);
    }
    cmd.env(CHILD, case)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "case {case}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "case {case} did not run:\n{stdout}"
    );
}

#[tokio::test]
async fn default_chain() {
    if let Ok(case) = std::env::var(CHILD) {
        return child(&case).await;
    }
    let endpoint = common::endpoint();
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("config");
    let credentials_file = dir.path().join("credentials");
    std::fs::write(
        &config_file,
        format!("[profile kms-test]\nregion = eu-west-1\nendpoint_url = {endpoint}\n"),
    )
    .unwrap();
    std::fs::write(
        &credentials_file,
        "[kms-test]\naws_access_key_id = profilekey\naws_secret_access_key = profilesecret\n",
    )
    .unwrap();
    let files = [
        ("AWS_CONFIG_FILE", config_file.display().to_string()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            credentials_file.display().to_string(),
        ),
    ];
    let mut profile = files.to_vec();
    profile.push(("AWS_PROFILE", "kms-test".into()));
    run_child("profile", &profile);
    run_child(
        "env",
        &[
            ("AWS_ACCESS_KEY_ID", "envkey".into()),
            ("AWS_SECRET_ACCESS_KEY", "envsecret".into()),
            ("AWS_REGION", "us-west-2".into()),
            ("AWS_ENDPOINT_URL", endpoint.clone()),
            ("KMS_TEST_AWS_ENDPOINT", endpoint.clone()),
        ],
    );
    // Empty config files, so no profile of the machine's can supply credentials.
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    run_child(
        "none",
        &[
            ("AWS_CONFIG_FILE", empty.display().to_string()),
            ("AWS_SHARED_CREDENTIALS_FILE", empty.display().to_string()),
            ("KMS_TEST_AWS_ENDPOINT", endpoint.clone()),
        ],
    );
    run_child(
        "noregion",
        &[
            ("AWS_CONFIG_FILE", empty.display().to_string()),
            ("AWS_SHARED_CREDENTIALS_FILE", empty.display().to_string()),
            ("AWS_ACCESS_KEY_ID", "envkey".into()),
            ("AWS_SECRET_ACCESS_KEY", "envsecret".into()),
            ("KMS_TEST_AWS_ENDPOINT", endpoint),
        ],
    );
}
