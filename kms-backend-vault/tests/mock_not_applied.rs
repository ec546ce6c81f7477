//! What a healthy OpenBao will not do on demand, scripted with wiremock: an HA standby's
//! refusals, a required index state, 5xx answers to a write, a write that times out, failures
//! of the reads a write makes before it sends anything; and hostile error bodies (control
//! characters, go-multierror text), which must end up on one line.

use std::time::Duration;

use kms_backend_vault::{VaultAuth, VaultClient, VaultStore};
use kms_core::{Error, ErrorKind, KeyName, KeyStore};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The data path of the key every test writes.
const DATA: &str = "/v1/secret/data/app/key";

fn key() -> KeyName {
    KeyName::new("app/key").unwrap()
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

/// A server that accepts the token and has the KV v2 mount `secret`.
async fn server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/auth/token/lookup-self"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"ttl": 0}})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/sys/internal/ui/mounts/secret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "path": "secret/", "type": "kv", "options": {"version": "2"}
        }})))
        .mount(&server)
        .await;
    server
}

async fn client(server: &MockServer) -> VaultClient {
    VaultClient::builder(server.uri())
        .auth(VaultAuth::token("t0ken-s3cret"))
        .timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap()
}

/// The error of a `store` the server answers with `response`.
async fn store_error(response: ResponseTemplate) -> Error {
    let server = server().await;
    Mock::given(method("POST"))
        .and(path(DATA))
        .respond_with(response)
        .mount(&server)
        .await;
    let store = VaultStore::builder(client(&server).await).build().unwrap();
    let err = store.store(&key(), "v".into()).await.unwrap_err();
    assert!(!err.to_string().contains("t0ken-s3cret"), "{err}");
    err
}

fn errors(list: &[&str]) -> serde_json::Value {
    json!({ "errors": list })
}

#[tokio::test]
async fn refusals_before_handling_prove_nothing_was_applied() {
    for (status, body) in [
        // A sealed server (OpenBao 2.7.2's words; the real one is tested in server_not_applied).
        (503, errors(&["Vault is sealed"])),
        // An HA standby with no active node, before it forwarded anything.
        (
            500,
            errors(&["local node not active but active cluster node not found"]),
        ),
        // Vault Enterprise: the node lacks the required index state (checked first).
        (412, errors(&["required index state not present"])),
        // A rate-limit quota (a refusal kind of its own).
        (
            429,
            errors(&["request path \"secret/data/app/key\": rate limit quota exceeded"]),
        ),
    ] {
        let err = store_error(ResponseTemplate::new(status).set_body_json(&body)).await;
        assert!(err.proves_not_applied(), "HTTP {status} {body}: {err:?}");
        assert!(err.is_retryable(), "HTTP {status}: {err:?}");
        assert_one_line(&err);
    }
}

#[tokio::test]
async fn other_failures_of_a_sent_write_leave_the_outcome_unknown() {
    for (status, body) in [
        // A standby also answers this after a forward to the active node failed.
        (503, errors(&["no active Vault instance found"])),
        (503, json!({})),
        (500, errors(&["internal error"])),
        (502, json!({})),
        (504, json!({})),
    ] {
        let err = store_error(ResponseTemplate::new(status).set_body_json(&body)).await;
        assert_eq!(err.kind(), ErrorKind::Unavailable, "HTTP {status}: {err}");
        assert!(!err.proves_not_applied(), "HTTP {status} {body}: {err:?}");
    }
    // A write that does not answer in time.
    let err = store_error(
        ResponseTemplate::new(200)
            .set_delay(Duration::from_secs(2))
            .set_body_json(json!({})),
    )
    .await;
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(!err.proves_not_applied(), "{err:?}");
}

#[tokio::test]
async fn a_read_before_the_write_that_fails_proves_nothing_was_written() {
    // The mount check fails with an unexplained 500: the write was never sent.
    let failing = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/auth/token/lookup-self"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"ttl": 0}})))
        .mount(&failing)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/sys/internal/ui/mounts/secret"))
        .respond_with(ResponseTemplate::new(500).set_body_json(errors(&["internal error"])))
        .mount(&failing)
        .await;
    let store = VaultStore::builder(client(&failing).await).build().unwrap();
    let err = store.store(&key(), "v".into()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.proves_not_applied(), "{err:?}");
    let err = store.remove(&key()).await.unwrap_err();
    assert!(err.proves_not_applied(), "{err:?}");

    // A field store reads the secret first; that read fails, so nothing is written.
    let server = server().await;
    Mock::given(method("GET"))
        .and(path(DATA))
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;
    let store = VaultStore::builder(client(&server).await)
        .field("password")
        .build()
        .unwrap();
    let err = store.store(&key(), "v".into()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.proves_not_applied(), "{err:?}");
    let writes = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .count();
    assert_eq!(writes, 0);
}

#[tokio::test]
async fn removing_a_missing_key_is_not_found_without_the_proof() {
    // NotFound says the key is gone: a value a cache holds for it is not right either.
    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/v1/secret/metadata/app/key"))
        .respond_with(ResponseTemplate::new(404).set_body_json(errors(&[])))
        .mount(&server)
        .await;
    let store = VaultStore::builder(client(&server).await).build().unwrap();
    let err = store.remove(&key()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(!err.proves_not_applied(), "{err:?}");
}

#[tokio::test]
async fn vault_error_lists_and_multierror_text_are_joined_on_one_line() {
    let err = store_error(
        ResponseTemplate::new(403)
            .set_body_json(errors(&["1 error occurred:\n\t* permission denied\n\n"])),
    )
    .await;
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert_eq!(
        err.message(),
        "store secret/data/app/key: HTTP 403: permission denied"
    );
    let err = store_error(ResponseTemplate::new(400).set_body_json(errors(&[
        "2 errors occurred:\n\t* field a is required\n\t* field b is too long\n\n",
        "one more",
    ])))
    .await;
    assert_eq!(
        err.message(),
        "store secret/data/app/key: HTTP 400: field a is required; field b is too long; one more"
    );
}

#[tokio::test]
async fn control_characters_in_a_hostile_body_never_reach_a_message() {
    let hostile =
        "evil\r\n2026-01-01 INFO forged log line\t\u{1b}[2J\u{0}\u{7f}\u{85}\u{2028}\u{202E}";
    for response in [
        ResponseTemplate::new(400).set_body_json(errors(&[hostile, hostile])),
        ResponseTemplate::new(403).set_body_json(errors(&[hostile])),
        ResponseTemplate::new(404).set_body_json(json!({ "errors": [], "warnings": [hostile] })),
        ResponseTemplate::new(503).set_body_json(errors(&[hostile])),
        ResponseTemplate::new(500).set_body_string(hostile),
        ResponseTemplate::new(418).set_body_string(hostile),
    ] {
        let err = store_error(response).await;
        assert_one_line(&err);
    }
    // Kept readable: the words, one space where the control characters were.
    let err = store_error(ResponseTemplate::new(400).set_body_json(errors(&[hostile]))).await;
    assert!(
        err.message()
            .ends_with("HTTP 400: evil 2026-01-01 INFO forged log line [2J"),
        "{:?}",
        err.message()
    );
}

#[tokio::test]
async fn a_rejected_login_quotes_vault_on_one_line() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/auth/approle/login"))
        .respond_with(ResponseTemplate::new(400).set_body_json(errors(&[
            "1 error occurred:\n\t* invalid role or secret ID\n\n",
            "second\r\nline",
        ])))
        .mount(&server)
        .await;
    let err = VaultClient::builder(server.uri())
        .auth(VaultAuth::app_role("role", "secret-id-5678"))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert!(
        err.message()
            .ends_with("login rejected: invalid role or secret ID; second line"),
        "{:?}",
        err.message()
    );
    assert_one_line(&err);
}
