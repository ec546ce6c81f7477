//! The gate: tokens, forwarding, limits, the connection cap; every refusal counted by reason.

use std::time::Duration;

use kms::KeyStoreExt;
use kms_agent::metrics::Refusal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{TCP0, TOKEN, Target, TestAgent, eventually};

async fn seeded(extra: &str) -> TestAgent {
    let a = TestAgent::start(&format!("[stores.mem.memory]\n{extra}{TCP0}")).await;
    a.store("mem").put("MyTest", "hunter2").await.unwrap();
    a
}

const PATH: &str = "/secretsmanager/get?secretId=MyTest";

#[tokio::test]
async fn refused_tokens_are_403_and_counted_by_reason() {
    let a = seeded("").await;
    let m = a.agent().live().metrics();
    // No token at all.
    let r = a.request("GET", PATH, &[]).await;
    assert_eq!((r.status, r.text().as_str()), (403, "Bad Token"));
    assert_eq!(m.refused_of(Refusal::MissingToken), 1);
    // The right token in a header the agent does not read.
    let r = a.request("GET", PATH, &[("Authorization", TOKEN)]).await;
    assert_eq!(r.status, 403);
    assert_eq!(m.refused_of(Refusal::MissingToken), 2);
    // A wrong token, in either header; a prefix of the right one; an empty one.
    for (h, v) in [
        ("X-Aws-Parameters-Secrets-Token", "wrong"),
        ("X-Vault-Token", "wrong"),
        ("X-Aws-Parameters-Secrets-Token", &TOKEN[..TOKEN.len() - 1]),
        ("X-Aws-Parameters-Secrets-Token", ""),
    ] {
        let r = a.request("GET", PATH, &[(h, v)]).await;
        assert_eq!(r.status, 403, "{h}: {v:?}");
    }
    assert_eq!(m.refused_of(Refusal::BadToken), 4);
    // Forwarded, even with the right token.
    let r = a
        .request(
            "GET",
            PATH,
            &[
                ("X-Aws-Parameters-Secrets-Token", TOKEN),
                ("X-Forwarded-For", "54.239.28.85"),
            ],
        )
        .await;
    assert_eq!((r.status, r.text().as_str()), (400, "Forwarded"));
    assert_eq!(m.refused_of(Refusal::Forwarded), 1);
    // The wrong method.
    let r = a
        .request("DELETE", PATH, &[("X-Aws-Parameters-Secrets-Token", TOKEN)])
        .await;
    assert_eq!(r.status, 405);
    assert_eq!(m.refused_of(Refusal::Method), 1);
    // And nothing of it reached a store: the right token still works.
    assert_eq!(a.get(PATH).await.status, 200);
    let text = a.metrics();
    for line in [
        "kms_agent_requests_refused_total{reason=\"missing_token\"} 2",
        "kms_agent_requests_refused_total{reason=\"bad_token\"} 4",
        "kms_agent_requests_refused_total{reason=\"forwarded\"} 1",
        "kms_agent_requests_refused_total{reason=\"method\"} 1",
        "kms_agent_requests_total{route=\"secretsmanager_get\",status=\"403\"} 6",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
}

#[tokio::test]
async fn health_checks_need_no_token() {
    let a = seeded("").await;
    for path in ["/ping", "/healthz", "/readyz"] {
        assert_eq!(a.request("GET", path, &[]).await.status, 200, "{path}");
    }
    // Unknown paths are refused before they are found missing.
    assert_eq!(a.request("GET", "/pong", &[]).await.status, 403);
}

#[tokio::test]
async fn a_token_file_is_followed_when_it_is_rotated() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("awssmatoken");
    std::fs::write(&token, "first-token\n").unwrap();
    let env = crate::common::env_with_token(&format!("file://{}", token.display()));
    let a = TestAgent::try_start_with_env(&format!("[stores.mem.memory]\n{TCP0}"), env)
        .await
        .unwrap();
    a.store("mem").put("MyTest", "v").await.unwrap();
    let with = |t: &'static str| [("X-Aws-Parameters-Secrets-Token", t)];
    assert_eq!(
        a.request("GET", PATH, &with("first-token")).await.status,
        200
    );
    let tmp = dir.path().join("awssmatoken.new");
    std::fs::write(&tmp, "second-token\n").unwrap();
    std::fs::rename(&tmp, &token).unwrap();
    assert_eq!(
        a.request("GET", PATH, &with("second-token")).await.status,
        200
    );
    assert_eq!(
        a.request("GET", PATH, &with("first-token")).await.status,
        403
    );
}

#[tokio::test]
async fn without_a_token_the_agent_does_not_start() {
    let e = crate::common::TestAgent::try_start_with_env(
        &format!("[stores.mem.memory]\n{TCP0}"),
        std::sync::Arc::new(|_: &str| None),
    )
    .await
    .err()
    .expect("refused");
    assert!(
        e.message()
            .contains("AWS_TOKEN, AWS_SESSION_TOKEN, AWS_CONTAINER_AUTHORIZATION_TOKEN"),
        "{e}"
    );
}

#[tokio::test]
async fn custom_token_headers_and_variables() {
    let env = std::sync::Arc::new(|k: &str| (k == "MY_TOKEN").then(|| "custom".to_owned()));
    let a = TestAgent::try_start_with_env(
        &format!(
            "[stores.mem.memory]\n[capabilities.secrets_manager.security]\nssrf_headers = [\"X-My-Token\"]\nssrf_env_variables = [\"MY_TOKEN\"]\n{TCP0}"
        ),
        env,
    )
    .await
    .unwrap();
    a.store("mem").put("MyTest", "v").await.unwrap();
    assert_eq!(
        a.request("GET", PATH, &[("X-My-Token", "custom")])
            .await
            .status,
        200
    );
    assert_eq!(
        a.request("GET", PATH, &[("X-Aws-Parameters-Secrets-Token", "custom")])
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn the_connection_cap_answers_429_with_room_for_health_checks() {
    let a = seeded("[capabilities.secrets_manager]\nmax_conn = 1\n").await;
    let Target::Tcp(addr) = a.target() else {
        unreachable!()
    };
    // A first connection, kept open (keep-alive) after one request.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(PATH)
        .header("host", "localhost")
        .header("X-Aws-Parameters-Secrets-Token", TOKEN)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    assert_eq!(sender.send_request(req).await.unwrap().status(), 200);
    // A second connection is one too many, except for health checks.
    let r = a.get(PATH).await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (429, "Connection limit exceeded")
    );
    assert_eq!(a.request("GET", "/ping", &[]).await.status, 200);
    assert_eq!(
        a.agent()
            .live()
            .metrics()
            .refused_of(Refusal::ConnectionLimit),
        1
    );
    drop(sender);
    eventually("the first connection is closed", async || {
        a.agent().live().connections() == 0
    })
    .await;
    assert_eq!(a.get(PATH).await.status, 200);
}

#[tokio::test]
async fn oversized_headers_are_431_and_counted() {
    let a = seeded("[agent.limits]\nmax_header_bytes = 4096\n").await;
    let big = "x".repeat(8000);
    let r = a
        .request(
            "GET",
            PATH,
            &[
                ("X-Aws-Parameters-Secrets-Token", TOKEN),
                ("X-Padding", &big),
            ],
        )
        .await;
    assert_eq!(r.status, 431);
    eventually("the refusal is counted", async || {
        a.agent()
            .live()
            .metrics()
            .refused_of(Refusal::HeadersTooLarge)
            == 1
    })
    .await;
    // Too many headers, too.
    let many: Vec<(String, String)> = (0..80)
        .map(|i| (format!("x-h{i}"), "v".to_owned()))
        .collect();
    let mut headers: Vec<(&str, &str)> =
        many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    headers.push(("X-Aws-Parameters-Secrets-Token", TOKEN));
    assert_eq!(a.request("GET", PATH, &headers).await.status, 431);
}

#[tokio::test]
async fn a_request_body_is_refused() {
    let a = seeded("").await;
    let Target::Tcp(addr) = a.target() else {
        unreachable!()
    };
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!(
            "GET {PATH} HTTP/1.1\r\nhost: x\r\nX-Aws-Parameters-Secrets-Token: {TOKEN}\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    assert_eq!(
        a.agent().live().metrics().refused_of(Refusal::BodyTooLarge),
        1
    );
}

#[tokio::test]
async fn slow_clients_are_cut_off_at_the_header_read_timeout() {
    let a = seeded("[agent.limits]\nheader_read_timeout = \"300ms\"\n").await;
    let Target::Tcp(addr) = a.target() else {
        unreachable!()
    };
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /ping HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // The rest never comes: the agent closes the connection.
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection was not closed");
    eventually("the refusal is counted", async || {
        a.agent()
            .live()
            .metrics()
            .refused_of(Refusal::HeaderTimeout)
            == 1
    })
    .await;
    // An idle keep-alive connection is closed too, but is not a refusal.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("/ping")
        .header("host", "localhost")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    assert_eq!(sender.send_request(req).await.unwrap().status(), 200);
    eventually("the idle connection is closed by the agent", async || {
        a.agent().live().connections() == 0
    })
    .await;
    drop(sender);
    assert_eq!(
        a.agent()
            .live()
            .metrics()
            .refused_of(Refusal::HeaderTimeout),
        1
    );
}
