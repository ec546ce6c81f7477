//! What a healthy AWS (or moto) will not do on demand, served by wiremock with AWS's own
//! JSON error bodies: throttling, 5xx, slow and malformed answers, denied and expired
//! credentials, secrets scheduled for deletion, disabled KMS keys. Each asserts the mapped
//! error kind and, with kms-core's retry layer, the retry behaviour.

mod common;

use std::time::Duration;

use kms_backend_aws::{AwsKmsProvider, SecretsManagerStore};
use kms_core::{
    CryptoProvider, EncryptionContext, ErrorKind, KeyName, KeyStore, RetryLayer, StoreBuilder,
    TimeoutLayer,
};
use serde_json::json;
use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "sup3r-s3cret-value";

fn key() -> KeyName {
    KeyName::new("app/db").unwrap()
}

/// Matches one AWS JSON operation (`secretsmanager.GetSecretValue`, `TrentService.Encrypt`).
fn op(target: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST")).and(header("x-amz-target", target))
}

/// AWS's error answer: status and `{"__type": code, "message": …}`.
fn aws_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .insert_header("x-amzn-requestid", "req-1")
        .set_body_json(json!({ "__type": code, "message": message }))
}

fn ok(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_json(body)
}

fn secret_body() -> serde_json::Value {
    json!({
        "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf",
        "Name": "app/db",
        "VersionId": "v-1",
        "SecretString": SECRET,
        "VersionStages": ["AWSCURRENT"],
        "CreatedDate": 1.7e9
    })
}

/// A mock server answering `target` with `response`.
async fn serving(target: &str, response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    op(target).respond_with(response).mount(&server).await;
    server
}

async fn store_on(server: &MockServer) -> SecretsManagerStore {
    SecretsManagerStore::builder(&common::connection(&server.uri()).load().await.unwrap())
        .build()
        .unwrap()
}

async fn requests(server: &MockServer, target: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| {
            r.headers
                .get("x-amz-target")
                .is_some_and(|v| v.to_str().unwrap() == target)
        })
        .count()
}

#[tokio::test]
async fn aws_error_codes_map_to_kinds() {
    let cases = [
        (
            400,
            "ThrottlingException",
            "Rate exceeded",
            ErrorKind::RateLimited,
        ),
        (
            400,
            "LimitExceededException",
            "limit",
            ErrorKind::RateLimited,
        ),
        (
            429,
            "TooManyRequestsException",
            "slow down",
            ErrorKind::RateLimited,
        ),
        (500, "InternalServiceError", "oops", ErrorKind::Unavailable),
        (503, "ServiceUnavailable", "later", ErrorKind::Unavailable),
        (
            400,
            "AccessDeniedException",
            "User: arn:aws:iam::1:user/x is not authorized",
            ErrorKind::PermissionDenied,
        ),
        (
            400,
            "ExpiredTokenException",
            "The security token included in the request is expired",
            ErrorKind::Unauthenticated,
        ),
        (
            400,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
            ErrorKind::Unauthenticated,
        ),
        (
            400,
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret.",
            ErrorKind::NotFound,
        ),
        (
            400,
            "InvalidParameterException",
            "bad parameter",
            ErrorKind::InvalidInput,
        ),
        (
            400,
            "DecryptionFailure",
            "Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
            ErrorKind::Unavailable,
        ),
        (400, "SomeBrandNewException", "new", ErrorKind::Backend),
    ];
    for (status, code, message, kind) in cases {
        let server = serving(
            "secretsmanager.GetSecretValue",
            aws_error(status, code, message),
        )
        .await;
        let err = store_on(&server).await.get(&key()).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{code}: {err}");
        assert_eq!(err.code(), Some(code), "{err}");
        assert_eq!(err.backend(), Some("aws"));
        assert!(err.message().contains("app/db"), "names the key: {err}");
        assert_eq!(
            requests(&server, "secretsmanager.GetSecretValue").await,
            1,
            "SDK retries are off"
        );
    }
}

#[tokio::test]
async fn an_error_without_a_body_maps_by_status() {
    let server = serving("secretsmanager.GetSecretValue", ResponseTemplate::new(503)).await;
    let err = store_on(&server).await.get(&key()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

#[tokio::test]
async fn malformed_answers_are_invalid_data() {
    for body in ["this is not json", "{\"SecretString\": 42}"] {
        let server = serving(
            "secretsmanager.GetSecretValue",
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/x-amz-json-1.1")
                .set_body_string(body),
        )
        .await;
        let err = store_on(&server).await.get(&key()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{body}: {err}");
    }
    // Well-formed but empty: neither SecretString nor SecretBinary.
    let server = serving(
        "secretsmanager.GetSecretValue",
        ok(json!({ "Name": "app/db", "VersionId": "v" })),
    )
    .await;
    let err = store_on(&server).await.get(&key()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
}

#[tokio::test]
async fn a_read_returns_value_version_and_date() {
    let server = serving("secretsmanager.GetSecretValue", ok(secret_body())).await;
    let read = store_on(&server).await.get(&key()).await.unwrap();
    assert_eq!(read.value.expose_secret(), SECRET.as_bytes());
    assert_eq!(read.meta.version.as_deref(), Some("v-1"));
    let at = read.meta.created_at.unwrap();
    assert_eq!(
        at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
        1_700_000_000
    );
    assert!(
        !format!("{read:?}").contains(SECRET),
        "Debug hides the value"
    );
}

#[tokio::test]
async fn slow_answers_time_out_in_the_sdk_or_the_layer() {
    let server = serving(
        "secretsmanager.GetSecretValue",
        ok(secret_body()).set_delay(Duration::from_secs(5)),
    )
    .await;
    // The SDK's operation timeout.
    let config = common::connection(&server.uri())
        .operation_timeout(Duration::from_millis(200))
        .load()
        .await
        .unwrap();
    let err = SecretsManagerStore::builder(&config)
        .build()
        .unwrap()
        .get(&key())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    // kms-core's timeout layer.
    let store = StoreBuilder::new(store_on(&server).await)
        .layer(TimeoutLayer::all(Duration::from_millis(200)))
        .build();
    let err = store.get(&key()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
}

fn fast_retries() -> RetryLayer {
    RetryLayer::new()
        .max_retries(3)
        .base_delay(Duration::from_millis(1))
        .jitter(Duration::from_millis(1))
        .max_delay(Duration::from_millis(5))
}

#[tokio::test]
async fn the_retry_layer_retries_throttling_until_it_passes() {
    let server = MockServer::start().await;
    op("secretsmanager.GetSecretValue")
        .respond_with(aws_error(400, "ThrottlingException", "Rate exceeded"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    op("secretsmanager.GetSecretValue")
        .respond_with(ok(secret_body()))
        .with_priority(2)
        .mount(&server)
        .await;
    let store = StoreBuilder::new(store_on(&server).await)
        .layer(fast_retries())
        .build();
    let read = store.get(&key()).await.unwrap();
    assert_eq!(read.value.expose_secret(), SECRET.as_bytes());
    assert_eq!(requests(&server, "secretsmanager.GetSecretValue").await, 3);
}

#[tokio::test]
async fn the_retry_layer_gives_up_on_5xx_and_never_retries_denials() {
    let server = serving(
        "secretsmanager.GetSecretValue",
        aws_error(500, "InternalServiceError", "oops"),
    )
    .await;
    let store = StoreBuilder::new(store_on(&server).await)
        .layer(fast_retries())
        .build();
    let err = store.get(&key()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_exhausted(), "{err}");
    assert_eq!(
        requests(&server, "secretsmanager.GetSecretValue").await,
        4,
        "1 + 3 retries"
    );

    for (code, kind) in [
        ("AccessDeniedException", ErrorKind::PermissionDenied),
        ("ExpiredTokenException", ErrorKind::Unauthenticated),
        ("ResourceNotFoundException", ErrorKind::NotFound),
    ] {
        let server = serving("secretsmanager.GetSecretValue", aws_error(400, code, "no")).await;
        let store = StoreBuilder::new(store_on(&server).await)
            .layer(fast_retries())
            .build();
        assert_eq!(store.get(&key()).await.unwrap_err().kind(), kind);
        assert_eq!(
            requests(&server, "secretsmanager.GetSecretValue").await,
            1,
            "{code}"
        );
    }
}

#[tokio::test]
async fn sdk_retries_can_be_turned_back_on() {
    let server = serving(
        "secretsmanager.GetSecretValue",
        aws_error(500, "InternalServiceError", "oops"),
    )
    .await;
    let config = common::connection(&server.uri())
        .sdk_retries(true)
        .load()
        .await
        .unwrap();
    let err = SecretsManagerStore::builder(&config)
        .build()
        .unwrap()
        .get(&key())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(
        requests(&server, "secretsmanager.GetSecretValue").await,
        3,
        "standard mode"
    );
}

const MARKED: &str =
    "You can't perform this operation on the secret because it was marked for deletion.";

/// Every wording AWS sends for a secret scheduled for deletion (or being deleted), with the
/// straight and the typographic apostrophe AWS uses in different answers.
const SCHEDULED_WORDINGS: &[&str] = &[
    MARKED,
    "You can\u{2019}t perform this operation on the secret because it was marked for deletion.",
    "You can't perform this operation on the secret because it was deleted.",
    "You can\u{2019}t perform this operation on the secret because it was deleted.",
    "You tried to perform the operation on a secret that's currently marked deleted.",
];

/// Reads and deletes of a secret scheduled for deletion are NotFound, writes a Conflict that
/// names the way out, whichever wording AWS uses.
#[tokio::test]
async fn every_scheduled_deletion_wording_is_not_found_for_reads_and_a_conflict_for_writes() {
    for wording in SCHEDULED_WORDINGS {
        let server = MockServer::start().await;
        for target in [
            "secretsmanager.GetSecretValue",
            "secretsmanager.PutSecretValue",
            "secretsmanager.DeleteSecret",
            "secretsmanager.DescribeSecret",
        ] {
            op(target)
                .respond_with(aws_error(400, "InvalidRequestException", wording))
                .mount(&server)
                .await;
        }
        let store = store_on(&server).await;
        let k = key();
        let reads = [
            store.get(&k).await.unwrap_err(),
            store.get_version(&k, "v-1").await.unwrap_err(),
            store
                .get_stage(&k, &kms_backend_aws::VersionStage::Previous)
                .await
                .unwrap_err(),
            store.remove(&k).await.unwrap_err(),
        ];
        for err in reads {
            assert_eq!(err.kind(), ErrorKind::NotFound, "{wording}: {err}");
            assert!(err.message().contains("scheduled for deletion"), "{err}");
        }
        let err = store.store(&k, SECRET.into()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{wording}: {err}");
        assert!(err.message().contains("restore_deleted"), "{err}");
        assert_eq!(requests(&server, "secretsmanager.RestoreSecret").await, 0);
        assert_eq!(requests(&server, "secretsmanager.CreateSecret").await, 0);
    }
}

/// `restore_deleted(true)` restores on every wording, from PutSecretValue and from
/// CreateSecret (a secret whose forced deletion is still under way answers the put with
/// "not found" and the create with "because it was deleted").
#[tokio::test]
async fn restore_deleted_restores_on_every_wording() {
    for wording in SCHEDULED_WORDINGS {
        for refused_by in [
            "secretsmanager.PutSecretValue",
            "secretsmanager.CreateSecret",
        ] {
            let server = MockServer::start().await;
            if refused_by == "secretsmanager.CreateSecret" {
                op("secretsmanager.PutSecretValue")
                    .respond_with(aws_error(400, "ResourceNotFoundException", "not found"))
                    .up_to_n_times(1)
                    .with_priority(1)
                    .mount(&server)
                    .await;
            }
            op(refused_by)
                .respond_with(aws_error(400, "InvalidRequestException", wording))
                .up_to_n_times(1)
                .with_priority(2)
                .mount(&server)
                .await;
            op("secretsmanager.PutSecretValue")
                .respond_with(ok(json!({ "Name": "app/db", "VersionId": "v-2" })))
                .with_priority(3)
                .mount(&server)
                .await;
            op("secretsmanager.RestoreSecret")
                .respond_with(ok(json!({ "Name": "app/db" })))
                .expect(1)
                .mount(&server)
                .await;
            let store = SecretsManagerStore::builder(
                &common::connection(&server.uri()).load().await.unwrap(),
            )
            .restore_deleted(true)
            .build()
            .unwrap();
            let meta = store.store(&key(), SECRET.into()).await.unwrap();
            assert_eq!(
                meta.version.as_deref(),
                Some("v-2"),
                "{wording} via {refused_by}"
            );
        }
    }
}

#[tokio::test]
async fn writing_a_secret_scheduled_for_deletion_is_a_clear_conflict() {
    let server = serving(
        "secretsmanager.PutSecretValue",
        aws_error(400, "InvalidRequestException", MARKED),
    )
    .await;
    let err = store_on(&server)
        .await
        .store(&key(), SECRET.into())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.message().contains("scheduled for deletion"), "{err}");
    assert!(
        err.message().contains("RestoreSecret"),
        "names the way out: {err}"
    );
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(SECRET), "the value leaked: {shown}");
    }
    assert_eq!(requests(&server, "secretsmanager.RestoreSecret").await, 0);
}

#[tokio::test]
async fn restore_deleted_restores_then_writes() {
    let server = MockServer::start().await;
    op("secretsmanager.PutSecretValue")
        .respond_with(aws_error(400, "InvalidRequestException", MARKED))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    op("secretsmanager.PutSecretValue")
        .respond_with(ok(json!({ "Name": "app/db", "VersionId": "v-2" })))
        .with_priority(2)
        .mount(&server)
        .await;
    op("secretsmanager.RestoreSecret")
        .respond_with(ok(json!({ "Name": "app/db" })))
        .expect(1)
        .mount(&server)
        .await;
    let store =
        SecretsManagerStore::builder(&common::connection(&server.uri()).load().await.unwrap())
            .restore_deleted(true)
            .build()
            .unwrap();
    let meta = store.store(&key(), SECRET.into()).await.unwrap();
    assert_eq!(meta.version.as_deref(), Some("v-2"));
    assert_eq!(requests(&server, "secretsmanager.PutSecretValue").await, 2);
}

#[tokio::test]
async fn store_creates_missing_secrets_and_survives_a_create_race() {
    // Missing: put fails, create succeeds.
    let server = serving(
        "secretsmanager.PutSecretValue",
        aws_error(400, "ResourceNotFoundException", "not found"),
    )
    .await;
    op("secretsmanager.CreateSecret")
        .respond_with(ok(json!({ "Name": "app/db", "VersionId": "v-1" })))
        .mount(&server)
        .await;
    let meta = store_on(&server)
        .await
        .store(&key(), SECRET.into())
        .await
        .unwrap();
    assert_eq!(meta.version.as_deref(), Some("v-1"));

    // Another writer created it in between: put again.
    let server = MockServer::start().await;
    op("secretsmanager.PutSecretValue")
        .respond_with(aws_error(400, "ResourceNotFoundException", "not found"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    op("secretsmanager.PutSecretValue")
        .respond_with(ok(json!({ "Name": "app/db", "VersionId": "v-9" })))
        .with_priority(2)
        .mount(&server)
        .await;
    op("secretsmanager.CreateSecret")
        .respond_with(aws_error(400, "ResourceExistsException", "exists"))
        .mount(&server)
        .await;
    let meta = store_on(&server)
        .await
        .store(&key(), SECRET.into())
        .await
        .unwrap();
    assert_eq!(meta.version.as_deref(), Some("v-9"));
}

#[tokio::test]
async fn health_counts_a_denial_as_reachable_and_a_5xx_as_down() {
    let server = serving(
        "secretsmanager.ListSecrets",
        aws_error(400, "AccessDeniedException", "not allowed to list"),
    )
    .await;
    store_on(&server).await.health().await.unwrap();

    let server = serving(
        "secretsmanager.ListSecrets",
        aws_error(400, "UnrecognizedClientException", "invalid token"),
    )
    .await;
    let err = store_on(&server).await.health().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");

    let server = serving(
        "secretsmanager.ListSecrets",
        aws_error(500, "InternalServiceError", "down"),
    )
    .await;
    let err = store_on(&server).await.health().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

async fn kms_on(server: &MockServer) -> AwsKmsProvider {
    AwsKmsProvider::new(
        &common::connection(&server.uri()).load().await.unwrap(),
        "alias/test",
    )
    .unwrap()
}

#[tokio::test]
async fn kms_error_codes_map_to_kinds() {
    let ctx = EncryptionContext::new().with("service", "test");
    let cases = [
        // The provider's own key is missing: its configuration, never the secret's NotFound.
        ("NotFoundException", ErrorKind::Configuration, false),
        ("DisabledException", ErrorKind::Unavailable, false),
        ("KMSInvalidStateException", ErrorKind::Unavailable, false),
        ("KMSInternalException", ErrorKind::Unavailable, true),
        ("KeyUnavailableException", ErrorKind::Unavailable, true),
        ("DependencyTimeoutException", ErrorKind::Timeout, true),
        ("AccessDeniedException", ErrorKind::PermissionDenied, false),
        ("ThrottlingException", ErrorKind::RateLimited, true),
        ("InvalidCiphertextException", ErrorKind::InvalidData, false),
        ("IncorrectKeyException", ErrorKind::InvalidData, false),
    ];
    for (code, kind, retryable) in cases {
        let server = MockServer::start().await;
        for target in [
            "TrentService.Encrypt",
            "TrentService.Decrypt",
            "TrentService.GenerateDataKey",
        ] {
            op(target)
                .respond_with(aws_error(400, code, ""))
                .mount(&server)
                .await;
        }
        let kms = kms_on(&server).await;
        let errs = [
            kms.encrypt(&SECRET.into(), &ctx).await.unwrap_err(),
            kms.decrypt(b"opaque", &ctx).await.unwrap_err(),
            kms.generate_data_key(&ctx).await.unwrap_err(),
        ];
        for err in errs {
            assert_eq!(err.kind(), kind, "{code}: {err}");
            assert_eq!(err.is_retryable(), retryable, "{code}: {err}");
            assert_eq!(err.backend(), Some("aws_kms"));
            assert!(err.message().contains("alias/test"), "names the key: {err}");
            assert!(!format!("{err:?}").contains(SECRET));
        }
    }
}

#[tokio::test]
async fn kms_answers_are_checked() {
    let server = MockServer::start().await;
    // A data key of the wrong length, and an Encrypt answer without its ciphertext.
    op("TrentService.GenerateDataKey")
        .respond_with(ok(json!({
            "KeyId": "k",
            "Plaintext": "AAAAAAAAAAAAAAAAAAAAAA==",
            "CiphertextBlob": "AQID"
        })))
        .mount(&server)
        .await;
    op("TrentService.Encrypt")
        .respond_with(ok(json!({ "KeyId": "k" })))
        .mount(&server)
        .await;
    let kms = kms_on(&server).await;
    let ctx = EncryptionContext::new();
    let err = kms.generate_data_key(&ctx).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    let err = kms.encrypt(&"x".into(), &ctx).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
}

#[tokio::test]
async fn kms_sends_the_encryption_context() {
    let server = MockServer::start().await;
    op("TrentService.Encrypt")
        .and(wiremock::matchers::body_partial_json(json!({
            "KeyId": "alias/test",
            "EncryptionContext": { "service": "payments", "tenant": "t1" }
        })))
        .respond_with(ok(json!({ "KeyId": "k", "CiphertextBlob": "AQID" })))
        .expect(1)
        .mount(&server)
        .await;
    let ctx = EncryptionContext::new()
        .with("service", "payments")
        .with("tenant", "t1");
    let ct = kms_on(&server)
        .await
        .encrypt(&"x".into(), &ctx)
        .await
        .unwrap();
    assert_eq!(ct, [1, 2, 3]);
}

fn list_page(names: &[&str], next: Option<&str>) -> ResponseTemplate {
    let list: Vec<_> = names.iter().map(|n| json!({ "Name": n })).collect();
    let mut body = json!({ "SecretList": list });
    if let Some(next) = next {
        body["NextToken"] = json!(next);
    }
    ok(body)
}

/// The page served for a request carrying `token` (`None`: the first request).
async fn mount_page(server: &MockServer, token: Option<&str>, page: ResponseTemplate) {
    match token {
        Some(t) => {
            op("secretsmanager.ListSecrets")
                .and(wiremock::matchers::body_partial_json(
                    json!({ "NextToken": t }),
                ))
                .respond_with(page)
                .with_priority(1)
                .mount(server)
                .await
        }
        None => {
            op("secretsmanager.ListSecrets")
                .respond_with(page)
                .with_priority(2)
                .mount(server)
                .await
        }
    }
}

/// A server whose pages cycle (first → A → B → A …) is an InvalidData error after a bounded
/// number of calls, not an endless loop; so is a page that hands back its own token.
#[tokio::test]
async fn a_next_token_cycle_is_invalid_data() {
    let server = MockServer::start().await;
    mount_page(&server, None, list_page(&["a"], Some("A"))).await;
    mount_page(&server, Some("A"), list_page(&["b"], Some("B"))).await;
    mount_page(&server, Some("B"), list_page(&["c"], Some("A"))).await;
    let err = store_on(&server)
        .await
        .list(&kms_core::KeyPrefix::all())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert!(err.message().contains("NextToken"), "{err}");
    assert_eq!(requests(&server, "secretsmanager.ListSecrets").await, 3);

    let server = MockServer::start().await;
    mount_page(&server, None, list_page(&["a"], Some("SELF"))).await;
    mount_page(&server, Some("SELF"), list_page(&["b"], Some("SELF"))).await;
    let err = store_on(&server)
        .await
        .list(&kms_core::KeyPrefix::all())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert_eq!(requests(&server, "secretsmanager.ListSecrets").await, 2);
}

/// A name on two pages (a secret created while listing shifts the pages) is listed once.
#[tokio::test]
async fn a_name_on_two_pages_is_listed_once() {
    let server = MockServer::start().await;
    mount_page(&server, None, list_page(&["a", "b"], Some("P2"))).await;
    mount_page(&server, Some("P2"), list_page(&["b", "c"], Some("P3"))).await;
    mount_page(&server, Some("P3"), list_page(&["c", "a", "d"], None)).await;
    let mut listed = store_on(&server)
        .await
        .list(&kms_core::KeyPrefix::all())
        .await
        .unwrap();
    listed.sort();
    let want: Vec<KeyName> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| KeyName::new(n).unwrap())
        .collect();
    assert_eq!(listed, want);
    assert_eq!(requests(&server, "secretsmanager.ListSecrets").await, 3);
}

/// Messages name the full remote name (namespace included) and the cause in words, not the
/// SDK's `Debug` dump.
#[tokio::test]
async fn messages_name_the_full_secret_name_and_the_cause() {
    let server = serving(
        "secretsmanager.GetSecretValue",
        aws_error(
            400,
            "AccessDeniedException",
            "User: arn:aws:iam::1:user/x is not authorized",
        ),
    )
    .await;
    let store =
        SecretsManagerStore::builder(&common::connection(&server.uri()).load().await.unwrap())
            .namespace("team-a/svc")
            .unwrap()
            .build()
            .unwrap();
    let err = store.get(&key()).await.unwrap_err();
    assert!(err.message().contains("team-a/svc/app/db"), "{err}");
    assert!(err.message().contains("is not authorized"), "{err}");

    // Nothing listening: the cause in words.
    let closed = common::connection("http://127.0.0.1:9")
        .load()
        .await
        .unwrap();
    let store = SecretsManagerStore::builder(&closed)
        .namespace("team-a/svc")
        .unwrap()
        .build()
        .unwrap();
    let err = store.get(&key()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let msg = err.message();
    assert!(msg.contains("team-a/svc/app/db"), "{msg}");
    assert!(msg.contains("Connection refused"), "{msg}");
    for dump in ["DispatchFailure", "ConnectorError", " { ", "Some("] {
        assert!(!msg.contains(dump), "SDK Debug dump {dump:?} in: {msg}");
    }
}

fn body_json(r: &wiremock::Request) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap()
}

async fn tokens_sent(server: &MockServer, target: &str) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.headers.get("x-amz-target").is_some_and(|v| v == target))
        .map(|r| {
            body_json(r)["ClientRequestToken"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// One `store` is one logical write: its Put, its Create and the Put after a create race all
/// carry one ClientRequestToken (32–64 characters, as AWS requires); the next `store` another.
#[tokio::test]
async fn one_store_sends_one_client_request_token() {
    let server = MockServer::start().await;
    op("secretsmanager.PutSecretValue")
        .respond_with(aws_error(400, "ResourceNotFoundException", "not found"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    op("secretsmanager.PutSecretValue")
        .respond_with(ok(json!({ "Name": "app/db", "VersionId": "v-9" })))
        .with_priority(2)
        .mount(&server)
        .await;
    op("secretsmanager.CreateSecret")
        .respond_with(aws_error(400, "ResourceExistsException", "exists"))
        .mount(&server)
        .await;
    let store = store_on(&server).await;
    store.store(&key(), SECRET.into()).await.unwrap();
    let puts = tokens_sent(&server, "secretsmanager.PutSecretValue").await;
    let creates = tokens_sent(&server, "secretsmanager.CreateSecret").await;
    assert_eq!(puts.len(), 2);
    assert_eq!(creates.len(), 1);
    assert!((32..=64).contains(&puts[0].len()), "{}", puts[0]);
    assert!(
        puts.iter().chain(&creates).all(|t| *t == puts[0]),
        "{puts:?} {creates:?}"
    );

    store.store(&key(), SECRET.into()).await.unwrap();
    let puts = tokens_sent(&server, "secretsmanager.PutSecretValue").await;
    assert_eq!(puts.len(), 3);
    assert_ne!(puts[2], puts[0], "a new logical write, a new token");
}

/// AWS refuses a token already used for a version of the secret with another value (an
/// envelope layer below the retry layer that had to seal again): that version is this write,
/// which already landed, so the store succeeds with it — on a Put whatever the wording, on a
/// Create by the token wording.
#[tokio::test]
async fn a_token_already_used_means_the_write_landed() {
    let token_in_use = "You can't use ClientRequestToken 0123 because that value is already in \
                        use for a version of secret \
                        arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf.";
    for msg in [
        token_in_use,
        "You can't modify an existing version, you can only create a new version.",
    ] {
        let server = serving(
            "secretsmanager.PutSecretValue",
            aws_error(400, "ResourceExistsException", msg),
        )
        .await;
        let meta = store_on(&server)
            .await
            .store(&key(), SECRET.into())
            .await
            .unwrap();
        let sent = tokens_sent(&server, "secretsmanager.PutSecretValue").await;
        assert_eq!(sent.len(), 1);
        assert_eq!(
            meta.version.as_deref(),
            Some(sent[0].as_str()),
            "{msg}: the version id is the token"
        );
    }
    // The first attempt created the secret: Put says not found (moto and AWS answer a
    // retried create's put this way only in a race), Create says the token is in use.
    let server = serving(
        "secretsmanager.PutSecretValue",
        aws_error(400, "ResourceNotFoundException", "not found"),
    )
    .await;
    op("secretsmanager.CreateSecret")
        .respond_with(aws_error(400, "ResourceExistsException", token_in_use))
        .mount(&server)
        .await;
    let meta = store_on(&server)
        .await
        .store(&key(), SECRET.into())
        .await
        .unwrap();
    let sent = tokens_sent(&server, "secretsmanager.CreateSecret").await;
    assert_eq!(meta.version.as_deref(), Some(sent[0].as_str()));
    assert_eq!(
        tokens_sent(&server, "secretsmanager.PutSecretValue")
            .await
            .len(),
        1
    );
}

/// The empty value is refused before any request (one rule for every store; AWS would refuse
/// it after the round trip).
#[tokio::test]
async fn the_empty_value_is_invalid_input_before_any_request() {
    let server = MockServer::start().await;
    let store = store_on(&server).await;
    let err = store
        .store(&key(), kms_core::SecretValue::from(""))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

/// A forced deletion still under way: Put says not found, Create says "because it was
/// deleted", and by the time of RestoreSecret the secret is gone. The store says Conflict,
/// never NotFound (a store never reports the key missing).
#[tokio::test]
async fn a_restore_that_finds_nothing_is_a_conflict() {
    let server = serving(
        "secretsmanager.PutSecretValue",
        aws_error(400, "ResourceNotFoundException", "not found"),
    )
    .await;
    op("secretsmanager.CreateSecret")
        .respond_with(aws_error(
            400,
            "InvalidRequestException",
            "You can't perform this operation on the secret because it was deleted.",
        ))
        .mount(&server)
        .await;
    op("secretsmanager.RestoreSecret")
        .respond_with(aws_error(
            400,
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret.",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let store =
        SecretsManagerStore::builder(&common::connection(&server.uri()).load().await.unwrap())
            .restore_deleted(true)
            .build()
            .unwrap();
    let err = store.store(&key(), SECRET.into()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.message().contains("RestoreSecret app/db"), "{err}");
    // Without restore_deleted: the create's answer, a Conflict naming the way out.
    let err = store_on(&server)
        .await
        .store(&key(), SECRET.into())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.message().contains("scheduled for deletion"), "{err}");
}
