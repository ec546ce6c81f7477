//! Client behaviour against a scripted Vault (wiremock on 127.0.0.1), for what OpenBao cannot
//! produce: Vault 1.16's "invalid token" wording, a server that keeps rejecting tokens, 412
//! consistency delays, the namespace header, lazy connect, servers that are not Vault, and
//! use outside a Tokio runtime.

use std::time::Duration;

use kms_backend_vault::{VaultAuth, VaultClient, VaultStore};
use kms_core::{ErrorKind, KeyName, KeyStore, Retry, RetryLayer};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn key() -> KeyName {
    KeyName::new("app/key").unwrap()
}

fn secret(value: &str, version: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(
        json!({"data": {"data": {"value": value}, "metadata": {"version": version}}}),
    )
}

/// A server with a valid token and the KV v2 mount `secret`.
async fn vault() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/auth/token/lookup-self"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"ttl": 0}})))
        .mount(&server)
        .await;
    mount_kv2(&server).await;
    server
}

async fn mount_kv2(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/v1/sys/internal/ui/mounts/secret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "path": "secret/", "type": "kv", "options": {"version": "2"}
        }})))
        .mount(server)
        .await;
}

async fn count(server: &MockServer, p: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == p)
        .count()
}

#[tokio::test]
async fn a_412_is_retried_and_the_read_succeeds() {
    let server = vault().await;
    Mock::given(method("GET"))
        .and(path("/v1/secret/data/app/key"))
        .respond_with(
            ResponseTemplate::new(412)
                .set_body_json(json!({"errors": ["required index state not present"]})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/secret/data/app/key"))
        .respond_with(secret("v", 1))
        .mount(&server)
        .await;
    let client = VaultClient::builder(server.uri())
        .auth(VaultAuth::token("t"))
        .build()
        .await
        .unwrap();
    let store = Retry::new(
        VaultStore::builder(client).build().unwrap(),
        RetryLayer::new().base_delay(Duration::from_millis(1)),
    );
    let got = store.get(&key()).await.unwrap();
    assert_eq!(got.value.expose_secret(), b"v");
    assert_eq!(count(&server, "/v1/secret/data/app/key").await, 2);
}

#[tokio::test]
async fn the_namespace_header_has_one_canonical_form() {
    for (ns, want) in [
        (Some(""), None),
        (Some("root"), None),
        (Some("/root/"), None),
        (None, None),
        (Some("/team-a/"), Some("team-a")),
        (Some("root/team-a/sub"), Some("team-a/sub")),
    ] {
        let server = vault().await;
        Mock::given(method("GET"))
            .and(path("/v1/secret/data/app/key"))
            .respond_with(secret("v", 1))
            .mount(&server)
            .await;
        let mut b = VaultClient::builder(server.uri()).auth(VaultAuth::token("t"));
        if let Some(ns) = ns {
            b = b.namespace(ns);
        }
        let store = VaultStore::builder(b.build().await.unwrap())
            .build()
            .unwrap();
        store.get(&key()).await.unwrap();
        for r in server.received_requests().await.unwrap() {
            let sent = r
                .headers
                .get("X-Vault-Namespace")
                .map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(sent.as_deref(), want, "{ns:?} on {}", r.url.path());
        }
    }
}

/// Vault 1.16+ says "invalid token" for an expired or revoked token: a fixed token is then
/// Unauthenticated (no lookup needed), for every operation.
#[tokio::test]
async fn vault_invalid_token_wording_is_unauthenticated() {
    let server = vault().await;
    Mock::given(method("GET"))
        .and(path("/v1/secret/data/app/key"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"errors": ["permission denied", "invalid token"]})),
        )
        .mount(&server)
        .await;
    let client = VaultClient::builder(server.uri())
        .auth(VaultAuth::token("t"))
        .build()
        .await
        .unwrap();
    let store = VaultStore::builder(client).build().unwrap();
    let err = store.get(&key()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert_eq!(
        count(&server, "/v1/auth/token/lookup-self").await,
        1,
        "only the lookup at build"
    );
}

/// A server that rejects every token it hands out: exactly one re-login per rejected token,
/// then no more logins until `min_relogin_interval` has passed.
#[tokio::test]
async fn a_server_that_keeps_rejecting_tokens_cannot_cause_a_login_storm() {
    let server = MockServer::start().await;
    mount_kv2(&server).await;
    Mock::given(method("POST"))
        .and(path("/v1/auth/approle/login"))
        .respond_with(|_: &Request| {
            ResponseTemplate::new(200).set_body_json(
                json!({"auth": {"client_token": "tok", "accessor": "acc", "lease_duration": 0}}),
            )
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/secret/data/app/key"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"errors": ["permission denied", "invalid token"]})),
        )
        .mount(&server)
        .await;
    let client = VaultClient::builder(server.uri())
        .auth(VaultAuth::app_role("rid", "sid"))
        .min_relogin_interval(Duration::from_secs(60))
        .build()
        .await
        .unwrap();
    let store = VaultStore::builder(client.clone()).build().unwrap();
    for _ in 0..10 {
        let err = store.get(&key()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    }
    assert_eq!(client.logins(), 2, "the first login and one re-login");

    // With no interval, each rejected token still costs at most one login.
    let fast = VaultClient::builder(server.uri())
        .auth(VaultAuth::app_role("rid", "sid"))
        .min_relogin_interval(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let store = VaultStore::builder(fast.clone()).build().unwrap();
    for _ in 0..3 {
        store.get(&key()).await.unwrap_err();
    }
    assert_eq!(
        fast.logins(),
        4,
        "one per call: the fresh token is not re-logged"
    );
}

#[tokio::test]
async fn a_server_that_is_not_vault_is_configuration_with_a_hint() {
    // Nothing mounted: every path answers a bare 404, as a web server would.
    let server = MockServer::start().await;
    let err = VaultClient::builder(server.uri())
        .auth(VaultAuth::token("t"))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    assert!(err.to_string().contains(&server.uri()), "{err}");
    assert!(err.to_string().contains("not a Vault server"), "{err}");

    // An HTML page for everything.
    let html = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>hello</html>"))
        .mount(&html)
        .await;
    let err = VaultClient::builder(html.uri())
        .auth(VaultAuth::token("t"))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    let err = VaultClient::builder(html.uri()).build_lazy().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "no token: {err}");
}

#[tokio::test]
async fn unreachable_addresses_name_the_address_and_the_cause() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = VaultClient::builder(&addr)
        .auth(VaultAuth::token("t0ken-s3cret"))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&addr) && msg.contains("refused"), "{msg}");
    assert!(!msg.contains("t0ken-s3cret"), "{msg}");

    let err = VaultClient::builder("http://vault.invalid:8200")
        .auth(VaultAuth::token("t"))
        .timeout(Duration::from_secs(3))
        .build()
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("http://vault.invalid:8200"), "{msg}");
    assert!(msg.contains("cannot resolve the host name (DNS)"), "{msg}");
}

/// Lazy mode: no I/O at build; the first calls share one login; a failed connect is tried
/// again by the next call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_clients_connect_on_first_use_once() {
    let server = MockServer::start().await;
    mount_kv2(&server).await;
    Mock::given(method("POST"))
        .and(path("/v1/auth/approle/login"))
        .respond_with(
            ResponseTemplate::new(503).set_body_json(json!({"errors": ["Vault is sealed"]})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/auth/approle/login"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_millis(100))
                .set_body_json(
                    json!({"auth": {"client_token": "tok", "accessor": "a", "lease_duration": 0}}),
                ),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/secret/data/app/key"))
        .and(header("X-Vault-Token", "tok"))
        .respond_with(secret("v", 1))
        .mount(&server)
        .await;
    let client = VaultClient::builder(server.uri())
        .auth(VaultAuth::app_role("rid", "sid"))
        .build_lazy()
        .unwrap();
    assert!(server.received_requests().await.unwrap().is_empty());
    let store = VaultStore::builder(client.clone()).build().unwrap();
    let err = store.get(&key()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let reads: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.get(&key()).await })
        })
        .collect();
    for r in reads {
        assert_eq!(r.await.unwrap().unwrap().value.expose_secret(), b"v");
    }
    assert_eq!(client.logins(), 1);
    assert_eq!(count(&server, "/v1/auth/approle/login").await, 2);
    assert_eq!(count(&server, "/v1/sys/internal/ui/mounts/secret").await, 1);
}

#[test]
fn outside_a_runtime_there_is_an_error_not_a_panic() {
    let server = std::thread::spawn(|| {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let s = vault().await;
            Mock::given(method("GET"))
                .and(path("/v1/secret/data/app/key"))
                .respond_with(secret("v", 1))
                .mount(&s)
                .await;
            s
        })
    });
    let server = server.join().unwrap();
    let err = futures::executor::block_on(
        VaultClient::builder(server.uri())
            .auth(VaultAuth::token("t"))
            .build(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    assert!(err.to_string().contains("Tokio runtime"), "{err}");

    // A lazy client is built without a runtime; used without one it errs, inside one it works.
    let client = VaultClient::builder(server.uri())
        .auth(VaultAuth::token("t"))
        .build_lazy()
        .unwrap();
    let store = VaultStore::builder(client).build().unwrap();
    let err = futures::executor::block_on(store.get(&key())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    let err = futures::executor::block_on(store.health()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let got = rt.block_on(store.get(&key())).unwrap();
    assert_eq!(got.value.expose_secret(), b"v");
    drop(rt);
    drop(server);
}

/// A re-login cancelled by the caller's timeout does not count against
/// `min_relogin_interval`: the next call logs in and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_relogin_does_not_block_the_next_one() {
    let server = MockServer::start().await;
    mount_kv2(&server).await;
    let login = |token: &str| {
        ResponseTemplate::new(200).set_body_json(
            json!({"auth": {"client_token": token, "accessor": "a", "lease_duration": 0}}),
        )
    };
    Mock::given(method("POST"))
        .and(path("/v1/auth/approle/login"))
        .respond_with(login("tok-1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/auth/approle/login"))
        .respond_with(login("tok-2").set_delay(Duration::from_secs(2)))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/auth/approle/login"))
        .respond_with(login("tok-3"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/secret/data/app/key"))
        .and(header("X-Vault-Token", "tok-3"))
        .respond_with(secret("v", 1))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/secret/data/app/key"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"errors": ["permission denied", "invalid token"]})),
        )
        .mount(&server)
        .await;
    let client = VaultClient::builder(server.uri())
        .auth(VaultAuth::app_role("rid", "sid"))
        .min_relogin_interval(Duration::from_secs(60))
        .build()
        .await
        .unwrap();
    let store = VaultStore::builder(client.clone()).build().unwrap();
    let cancelled = tokio::time::timeout(Duration::from_millis(300), store.get(&key())).await;
    assert!(cancelled.is_err(), "the slow login was cut short");
    let got = store.get(&key()).await.unwrap();
    assert_eq!(got.value.expose_secret(), b"v");
    assert_eq!(
        client.logins(),
        2,
        "tok-1, then tok-3 (tok-2 never installed)"
    );
}
