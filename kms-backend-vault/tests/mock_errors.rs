//! Error mapping and auth edge cases against a scripted Vault (wiremock on 127.0.0.1).

use std::time::Duration;

use kms_backend_vault::{VaultAuth, VaultClient, VaultStore, VaultTransitProvider};
use kms_core::{CryptoProvider, EncryptionContext, ErrorKind, KeyName, KeyStore};
use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/auth/token/lookup-self"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"ttl": 0}})))
        .mount(&server)
        .await;
    mount_kv2(&server).await;
    server
}

/// What Vault answers for the KV v2 mount `secret` (`sys/internal/ui/mounts/secret`).
async fn mount_kv2(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/v1/sys/internal/ui/mounts/secret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "path": "secret/", "type": "kv", "options": {"version": "2"}
        }})))
        .mount(server)
        .await;
}

async fn store(server: &MockServer, timeout: Duration) -> VaultStore {
    let client = VaultClient::builder(server.uri())
        .auth(VaultAuth::token("t0ken-s3cret"))
        .timeout(timeout)
        .build()
        .await
        .unwrap();
    VaultStore::builder(client).build().unwrap()
}

async fn get_kind(response: ResponseTemplate) -> (ErrorKind, String) {
    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/v1/secret/data/app/key"))
        .respond_with(response)
        .mount(&server)
        .await;
    let store = store(&server, Duration::from_millis(300)).await;
    let err = store
        .get(&KeyName::new("app/key").unwrap())
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("t0ken-s3cret"), "{err}");
    (err.kind(), err.to_string())
}

#[tokio::test]
async fn status_codes_map_to_kinds() {
    let errors = |msg: &str| json!({ "errors": [msg] });
    let cases = [
        (
            429,
            errors("rate limit quota exceeded"),
            ErrorKind::RateLimited,
        ),
        (500, errors("internal error"), ErrorKind::Unavailable),
        (502, json!({}), ErrorKind::Unavailable),
        (503, errors("Vault is sealed"), ErrorKind::Unavailable),
        (404, json!({"errors": []}), ErrorKind::NotFound),
        (
            412,
            errors("required index state not present"),
            ErrorKind::Unavailable,
        ),
        (
            403,
            errors("permission denied"),
            ErrorKind::PermissionDenied,
        ),
    ];
    for (status, body, kind) in cases {
        let (got, msg) = get_kind(ResponseTemplate::new(status).set_body_json(body)).await;
        assert_eq!(got, kind, "HTTP {status}: {msg}");
    }
    let (_, msg) =
        get_kind(ResponseTemplate::new(503).set_body_json(json!({"errors": ["Vault is sealed"]})))
            .await;
    assert!(msg.contains("sealed"), "{msg}");
}

#[tokio::test]
async fn slow_answers_time_out() {
    let (kind, msg) = get_kind(
        ResponseTemplate::new(200)
            .set_delay(Duration::from_secs(2))
            .set_body_json(json!({})),
    )
    .await;
    assert_eq!(kind, ErrorKind::Timeout, "{msg}");
}

#[tokio::test]
async fn malformed_answers_are_invalid_data() {
    for body in [
        ResponseTemplate::new(200).set_body_string("{not json"),
        ResponseTemplate::new(200).set_body_json(json!({"data": {"data": {"value": "x"}}})),
        ResponseTemplate::new(200).set_body_json(json!({"nothing": 1})),
    ] {
        let (kind, msg) = get_kind(body).await;
        assert_eq!(kind, ErrorKind::InvalidData, "{msg}");
    }
}

#[tokio::test]
async fn unreachable_server_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = VaultClient::builder(addr)
        .auth(VaultAuth::token("t0ken-s3cret"))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(!err.to_string().contains("t0ken-s3cret"), "{err}");
}

#[tokio::test]
async fn health_reports_sealed_and_uninitialised_as_down_and_standbys_as_serving() {
    let cases = [
        (
            200,
            json!({"initialized": true, "sealed": false, "standby": false}),
            true,
        ),
        (
            473,
            json!({"initialized": true, "sealed": false, "standby": true, "performance_standby": true}),
            true,
        ),
        // A standby forwards requests to the active node: it serves.
        (
            429,
            json!({"initialized": true, "sealed": false, "standby": true}),
            true,
        ),
        (
            503,
            json!({"initialized": true, "sealed": true, "standby": true}),
            false,
        ),
        (501, json!({"initialized": false, "sealed": true}), false),
    ];
    for (status, body, healthy) in cases {
        let server = server().await;
        Mock::given(method("GET"))
            .and(path("/v1/sys/health"))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .mount(&server)
            .await;
        let result = store(&server, Duration::from_secs(2)).await.health().await;
        match (healthy, result) {
            (true, Ok(())) => {}
            (false, Err(e)) => assert_eq!(e.kind(), ErrorKind::Unavailable, "{status}: {e}"),
            (h, r) => panic!("HTTP {status}: expected healthy={h}, got {r:?}"),
        }
    }
}

/// AppRole against a scripted server: the first token is rejected, the second accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_403s_share_one_relogin() {
    let server = MockServer::start().await;
    mount_kv2(&server).await;
    // Logins hand out token-1, then token-2 (wiremock tries mocks in mounting order).
    Mock::given(method("POST"))
        .and(path("/v1/auth/approle/login"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"auth": {"client_token": "token-1", "accessor": "acc-1", "lease_duration": 0, "renewable": false}}),
        ))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/auth/approle/login"))
        .and(body_partial_json(json!({"role_id": "rid", "secret_id": "sid"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"auth": {"client_token": "token-2", "accessor": "acc-2", "lease_duration": 0, "renewable": false}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/auth/token/lookup-self"))
        .and(header("X-Vault-Token", "token-1"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"errors": ["permission denied"]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/secret/data/k"))
        .and(header("X-Vault-Token", "token-1"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_delay(Duration::from_millis(50))
                .set_body_json(json!({"errors": ["permission denied"]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/secret/data/k"))
        .and(header("X-Vault-Token", "token-2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"data": {"data": {"value": "ok"}, "metadata": {"version": 1}}}),
            ),
        )
        .mount(&server)
        .await;
    let client = VaultClient::builder(server.uri())
        .auth(VaultAuth::app_role("rid", "sid"))
        .build()
        .await
        .unwrap();
    assert_eq!(client.token_accessor().as_deref(), Some("acc-1"));
    let store = VaultStore::builder(client.clone()).build().unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.get(&KeyName::new("k").unwrap()).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().value.expose_secret(), b"ok");
    }
    assert_eq!(client.logins(), 2);
    assert_eq!(client.token_accessor().as_deref(), Some("acc-2"));
    server.verify().await;
}

#[tokio::test]
async fn kubernetes_login_sends_role_and_jwt() {
    let dir = tempfile::tempdir().unwrap();
    let jwt = dir.path().join("token");
    std::fs::write(&jwt, "header.payload.signature\n").unwrap();
    let server = MockServer::start().await;
    mount_kv2(&server).await;
    Mock::given(method("POST"))
        .and(path("/v1/auth/kubernetes/login"))
        .and(body_partial_json(
            json!({"role": "payments", "jwt": "header.payload.signature"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"auth": {"client_token": "k8s-token", "accessor": "acc", "lease_duration": 0}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let auth = VaultAuth::kubernetes("payments").with_jwt_path(&jwt);
    let client = VaultClient::builder(server.uri())
        .auth(auth)
        .namespace("team-a")
        .build()
        .await
        .unwrap();
    assert_eq!(client.logins(), 1);
    Mock::given(method("GET"))
        .and(path("/v1/secret/data/k"))
        .and(header("X-Vault-Token", "k8s-token"))
        .and(header("X-Vault-Namespace", "team-a"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"data": {"data": {"value": "v"}, "metadata": {"version": 4}}}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let store = VaultStore::builder(client).build().unwrap();
    // Stores that differ only in their namespace read different secrets, and say so.
    assert_eq!(store.to_string(), "Vault(kv2:secret, namespace=team-a)");
    let got = store.get(&KeyName::new("k").unwrap()).await.unwrap();
    assert_eq!(got.meta.version.as_deref(), Some("4"));
    server.verify().await;
}

#[tokio::test]
async fn transit_decrypt_failure_is_invalid_data_and_non_utf8_ciphertext_is_rejected() {
    let server = server().await;
    Mock::given(method("POST"))
        .and(path("/v1/transit/decrypt/k"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"errors": ["cipher: message authentication failed"]})),
        )
        .mount(&server)
        .await;
    let client = VaultClient::builder(server.uri())
        .auth(VaultAuth::token("t"))
        .build()
        .await
        .unwrap();
    Mock::given(method("GET"))
        .and(path("/v1/sys/internal/ui/mounts/transit"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": {"path": "transit/", "type": "transit", "options": null}}),
        ))
        .mount(&server)
        .await;
    // The key is derived (checked once, with the mount).
    Mock::given(method("GET"))
        .and(path("/v1/transit/keys/k"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"derived": true}})))
        .mount(&server)
        .await;
    let transit = VaultTransitProvider::new(client, "k").unwrap();
    let ctx = EncryptionContext::new();
    let err = transit.decrypt(b"vault:v1:AAAA", &ctx).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    let err = transit.decrypt(&[0xff, 0xfe], &ctx).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert!(!format!("{transit:?}").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_runs_in_the_background_and_stops_when_the_client_is_dropped() {
    let server = MockServer::start().await;
    mount_kv2(&server).await;
    Mock::given(method("GET"))
        .and(path("/v1/auth/token/lookup-self"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"ttl": 1, "renewable": true, "accessor": "acc"}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/auth/token/renew-self"))
        .and(header("X-Vault-Token", "renew-me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"auth": {"client_token": "renew-me", "lease_duration": 1, "renewable": true}}),
        ))
        .mount(&server)
        .await;
    let renewals = || async {
        server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path() == "/v1/auth/token/renew-self")
            .count()
    };
    let client = VaultClient::builder(server.uri())
        .auth(VaultAuth::token("renew-me"))
        .renew_fraction(0.5)
        .build()
        .await
        .unwrap();
    assert!(!format!("{client:?}").contains("renew-me"));
    // Real time (the HTTP round trips are real): a 1 s lease renewed every 0.5 s.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let while_alive = renewals().await;
    assert!(while_alive >= 2, "renewed {while_alive} times");
    drop(client);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let at_drop = renewals().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(renewals().await, at_drop, "renewal continued after drop");
}

#[tokio::test]
async fn bad_tls_material_is_a_configuration_error() {
    let err = VaultClient::builder("https://127.0.0.1:1")
        .client_identity_pem("not a pem at all")
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    assert!(!err.to_string().contains("not a pem"), "{err}");
}

/// A bare 403 with a token that `lookup-self` shows valid is a policy denial (no login); a
/// bare 403 with a token `lookup-self` rejects costs exactly one login, and a rejection of
/// the fresh token ends as Unauthenticated without another.
#[tokio::test]
async fn denial_with_valid_token_skips_login_and_repeated_403_gives_up_after_one() {
    let server = MockServer::start().await;
    mount_kv2(&server).await;
    Mock::given(method("POST"))
        .and(path("/v1/auth/approle/login"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"auth": {"client_token": "tok", "accessor": "acc", "lease_duration": 0}}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/secret/data/denied"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"errors": ["permission denied"]})),
        )
        .mount(&server)
        .await;
    // The token looks valid first, then rejected.
    Mock::given(method("GET"))
        .and(path("/v1/auth/token/lookup-self"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"ttl": 0}})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/auth/token/lookup-self"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"errors": ["permission denied"]})),
        )
        .mount(&server)
        .await;
    let client = VaultClient::builder(server.uri())
        .auth(VaultAuth::app_role("rid", "sid"))
        .build()
        .await
        .unwrap();
    let store = VaultStore::builder(client.clone()).build().unwrap();
    let denied = KeyName::new("denied").unwrap();
    let err = store.get(&denied).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert_eq!(client.logins(), 1, "valid token: no login");
    let err = store.get(&denied).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Unauthenticated,
        "rejected again right after a fresh login: {err}"
    );
    assert_eq!(
        client.logins(),
        2,
        "rejected token: exactly one login, then give up"
    );
    let data_reads = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v1/secret/data/denied")
        .count();
    assert_eq!(
        data_reads, 3,
        "first call once, second call once plus one retry"
    );
}
