//! What a healthy AWS (or moto) will not do on demand, served by wiremock: throttling and 5xx
//! answers to a write (does the failure prove nothing was applied?), a `DescribeSecret` that
//! fails before a forced delete, a write that times out, and hostile error bodies (control
//! characters in AWS's message, code or an unparseable answer), which must end up on one line.

mod common;

use std::time::Duration;

use kms_backend_aws::{Deletion, SecretsManagerStore};
use kms_core::{Error, ErrorKind, KeyName, KeyStore};
use serde_json::json;
use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

const VALUE: &str = "the-value";

fn key() -> KeyName {
    KeyName::new("app/db").unwrap()
}

/// No character that could split or disguise a log line.
fn assert_one_line(err: &Error) {
    let text = err.to_string();
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202E}')),
        "{text:?}"
    );
}

fn op(target: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST")).and(header("x-amz-target", target))
}

fn aws_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_json(json!({ "__type": code, "message": message }))
}

async fn store_error(response: ResponseTemplate) -> Error {
    let server = MockServer::start().await;
    op("secretsmanager.PutSecretValue")
        .respond_with(response)
        .mount(&server)
        .await;
    let config = common::connection(&server.uri())
        .operation_timeout(Duration::from_millis(300))
        .load()
        .await
        .unwrap();
    SecretsManagerStore::builder(&config)
        .build()
        .unwrap()
        .store(&key(), VALUE.into())
        .await
        .unwrap_err()
}

#[tokio::test]
async fn throttling_proves_nothing_was_applied_5xx_and_timeouts_do_not() {
    for (status, code, proves) in [
        (400, "ThrottlingException", true),
        (429, "TooManyRequestsException", true),
        (400, "LimitExceededException", true),
        (500, "InternalServiceError", false),
        (503, "ServiceUnavailable", false),
        (503, "ServiceUnavailableException", false),
    ] {
        let err = store_error(aws_error(status, code, "m")).await;
        assert_eq!(err.proves_not_applied(), proves, "{code}: {err:?}");
    }
    let err = store_error(
        aws_error(200, "x", "x").set_delay(Duration::from_secs(5)), // never in time
    )
    .await;
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(!err.proves_not_applied(), "{err:?}");
}

#[tokio::test]
async fn a_failed_describe_before_a_forced_delete_proves_nothing_was_deleted() {
    let server = MockServer::start().await;
    op("secretsmanager.DescribeSecret")
        .respond_with(aws_error(500, "InternalServiceError", "oops"))
        .mount(&server)
        .await;
    let config = common::connection(&server.uri()).load().await.unwrap();
    let store = SecretsManagerStore::builder(&config)
        .deletion(Deletion::Force)
        .unwrap()
        .build()
        .unwrap();
    let err = store.remove(&key()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.proves_not_applied(), "{err:?}");
    let deletes = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| {
            r.headers
                .get("x-amz-target")
                .is_some_and(|v| v == "secretsmanager.DeleteSecret")
        })
        .count();
    assert_eq!(deletes, 0);

    // A secret that does not exist: NotFound says it is gone, not "nothing changed".
    let server = MockServer::start().await;
    op("secretsmanager.DescribeSecret")
        .respond_with(aws_error(400, "ResourceNotFoundException", "not found"))
        .mount(&server)
        .await;
    let config = common::connection(&server.uri()).load().await.unwrap();
    let store = SecretsManagerStore::builder(&config)
        .deletion(Deletion::Force)
        .unwrap()
        .build()
        .unwrap();
    let err = store.remove(&key()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(!err.proves_not_applied(), "{err:?}");
}

#[tokio::test]
async fn control_characters_in_a_hostile_answer_never_reach_a_message() {
    let hostile =
        "bad\r\n2026-01-01 INFO forged log line\t\u{1b}[2J\u{0}\u{7f}\u{85}\u{2028}\u{202E}";
    for response in [
        aws_error(400, "ValidationException", hostile),
        aws_error(400, "InvalidRequestException", hostile),
        aws_error(500, "InternalServiceError", hostile),
        aws_error(400, "Weird\nCode\u{1b}", hostile),
        ResponseTemplate::new(500).set_body_string(hostile),
        ResponseTemplate::new(200)
            .insert_header("content-type", "application/x-amz-json-1.1")
            .set_body_string(format!("{{\"VersionId\": \"{hostile}")),
    ] {
        let err = store_error(response).await;
        assert_one_line(&err);
    }
    // Kept readable: the words, one space where the control characters were.
    let err = store_error(aws_error(400, "ValidationException", hostile)).await;
    assert!(
        err.message()
            .ends_with(": bad 2026-01-01 INFO forged log line [2J"),
        "{:?}",
        err.message()
    );
}
