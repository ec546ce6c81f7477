//! AWS Secrets Manager opened from a URI and from TOML against moto, with validate + cache +
//! resilience + metrics from the same text, and envelope encryption with AWS KMS, through the
//! conformance suite.

mod common;

use kms::{Config, KeyStoreExt};

fn endpoint() -> String {
    std::env::var("KMS_TEST_AWS_ENDPOINT").expect(
        "KMS_TEST_AWS_ENDPOINT is not set: start moto (scripts/peers/moto.sh) or export \
         KMS_TEST_AWS_ENDPOINT=http://127.0.0.1:5000",
    )
}

fn uri(namespace: &str, extra: &str) -> String {
    format!(
        "aws-sm://us-east-1/{namespace}?endpoint_url={}&access_key_id=testing\
         &secret_access_key=testing&deletion=force&connect_timeout=2s&operation_timeout=10s{extra}",
        endpoint()
    )
}

fn toml(namespace: &str) -> String {
    format!(
        r#"
[stores.sm.aws]
region = "us-east-1"
endpoint_url = "{}"
access_key_id = "testing"
secret_access_key = "testing"
namespace = "{namespace}"
description = "kms facade conformance"
tags.owner = "kms-facade"
deletion = "force"
restore_deleted = true
list_page_size = 50
version_stage = "AWSCURRENT"
{}"#,
        endpoint(),
        common::layer_toml("sm", "kms_facade_aws_toml")
    )
}

/// A fresh KMS key on moto.
async fn kms_key() -> String {
    let sdk = kms::aws::AwsConnection::new()
        .region("us-east-1")
        .endpoint_url(endpoint())
        .static_credentials("testing", "testing".to_owned(), None)
        .load()
        .await
        .expect("the emulator's SdkConfig");
    let client = kms::aws::sdk::aws_sdk_kms::Client::new(&sdk);
    let key = client
        .create_key()
        .description("kms facade test key")
        .send()
        .await
        .expect("CreateKey on moto");
    key.key_metadata().unwrap().key_id().to_owned()
}

mod from_uri {
    use super::*;
    kms_core::conformance_tests!(
        kms::open(&uri(
            &common::unique("facade-uri"),
            &format!("&{}", common::layer_query("kms_facade_aws_uri"))
        ))
        .await
        .expect("opens")
    );
}

mod from_toml {
    use super::*;
    kms_core::conformance_tests!(
        Config::from_toml_str(&toml(&common::unique("facade-toml")))
            .expect("parses")
            .open("sm")
            .await
            .expect("opens")
    );
}

mod envelope_with_kms_from_uri {
    use super::*;
    kms_core::conformance_tests!(
        kms::open(&uri(
            &common::unique("facade-kms"),
            &format!(
                "&envelope.provider=aws-kms&envelope.key={}&envelope.context.suite=conformance&{}",
                kms_key().await,
                common::layer_query("kms_facade_aws_kms")
            )
        ))
        .await
        .expect("opens")
    );
}

/// AWS KMS over a memory store, with its own connection in `envelope.aws`.
mod envelope_with_kms_over_memory_from_toml {
    use super::*;
    kms_core::conformance_tests!(
        Config::from_toml_str(&format!(
            r#"
[stores.m.memory]
[stores.m.envelope]
provider = "aws-kms"
key = "{}"
aws.region = "us-east-1"
aws.endpoint_url = "{}"
aws.access_key_id = "testing"
aws.secret_access_key = "testing"
"#,
            kms_key().await,
            endpoint()
        ))
        .expect("parses")
        .open("m")
        .await
        .expect("opens")
    );
}

#[tokio::test]
async fn the_stack_and_the_namespace_reach_secrets_manager() {
    observes!("aws.namespace");
    let ns = common::unique("facade-ns");
    let store = Config::from_toml_str(&toml(&ns))
        .unwrap()
        .open("sm")
        .await
        .unwrap();
    assert!(
        store.to_string().starts_with(
            "Instrumented(Validate(Cache(CircuitBreaker(Retry(Monitored(Timeout(SecretsManager"
        ),
        "{store}"
    );
    store.put("a/b", "v").await.unwrap();
    // The secret's name in AWS carries the namespace.
    let plain = kms::open(&uri("", "")).await.unwrap();
    let key = format!("{ns}/a/b");
    assert_eq!(
        plain.get_value(&key).await.unwrap().expose_str().unwrap(),
        "v"
    );
    store.delete("a/b").await.unwrap();
}
