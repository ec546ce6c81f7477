//! Listeners: TCP on loopback only unless allowed, a Unix socket with its mode, and the
//! metrics-only listener that needs no token.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use kms::KeyStoreExt;

use crate::common::{Target, TestAgent, aws_token, send};

#[tokio::test]
async fn a_unix_socket_with_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let a = TestAgent::start(&format!(
        "[agent.tcp]\nenabled = false\n[agent.unix]\npath = \"{}\"\nmode = \"0600\"\n[stores.mem.memory]\n",
        sock.display()
    ))
    .await;
    assert_eq!(a.agent().tcp_addr(), None);
    assert_eq!(a.agent().unix_path(), Some(sock.as_path()));
    let meta = std::fs::symlink_metadata(&sock).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    a.store("mem").put("MyTest", "over-unix").await.unwrap();
    let target = Target::Unix(sock.clone());
    let r = send(
        &target,
        "GET",
        "/secretsmanager/get?secretId=MyTest",
        &aws_token(),
    )
    .await;
    assert_eq!(r.json()["SecretString"], "over-unix");
    // The same gate as TCP.
    assert_eq!(send(&target, "GET", "/v1/MyTest", &[]).await.status, 403);
    assert!(a.stop().await);
    assert!(!sock.exists(), "the socket is removed at shutdown");
}

#[tokio::test]
async fn tcp_and_unix_together() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let a = TestAgent::start(&format!(
        "[agent.tcp]\naddress = \"127.0.0.1:0\"\n[agent.unix]\npath = \"{}\"\n[stores.mem.memory]\n",
        sock.display()
    ))
    .await;
    assert_eq!(
        std::fs::symlink_metadata(&sock)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o660
    );
    assert_eq!(a.request("GET", "/ping", &[]).await.status, 200);
    assert_eq!(
        send(&Target::Unix(sock), "GET", "/ping", &[]).await.status,
        200
    );
}

#[tokio::test]
async fn the_metrics_listener_serves_openmetrics_without_a_token() {
    let a = TestAgent::start(
        "[agent.tcp]\naddress = \"127.0.0.1:0\"\n[agent.metrics]\naddress = \"127.0.0.1:0\"\n\
         [stores.mem.memory]\n[stores.mem.metrics]\n[stores.mem.cache]\n",
    )
    .await;
    a.store("mem").put("MyTest", "v").await.unwrap();
    assert_eq!(
        a.get("/secretsmanager/get?secretId=MyTest").await.status,
        200
    );
    let metrics = Target::Tcp(a.agent().metrics_addr().unwrap());
    let r = send(&metrics, "GET", "/metrics", &[]).await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = r.text();
    assert!(
        text.contains("kms_agent_requests_total{route=\"secretsmanager_get\",status=\"200\"} 1"),
        "{text}"
    );
    // The stores' own families, from the same registry.
    assert!(text.contains("kms_key_operations_total"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"));
    assert_eq!(
        send(
            &metrics,
            "GET",
            "/secretsmanager/get?secretId=MyTest",
            &aws_token()
        )
        .await
        .status,
        404
    );
    assert_eq!(send(&metrics, "POST", "/metrics", &[]).await.status, 405);
    // Health checks for probes that cannot reach a loopback listener.
    assert_eq!(send(&metrics, "GET", "/healthz", &[]).await.text(), "ok");
    assert_eq!(
        send(&metrics, "GET", "/readyz", &[]).await.json()["ready"],
        true
    );
    // Scrapes do not count towards max_conn and are not on the API listener.
    assert_eq!(a.request("GET", "/metrics", &aws_token()).await.status, 404);
}

#[tokio::test]
async fn non_loopback_addresses_are_refused_unless_allowed() {
    let e = TestAgent::try_start("[agent.tcp]\naddress = \"0.0.0.0:0\"\n[stores.mem.memory]\n")
        .await
        .err()
        .expect("refused");
    assert!(e.message().contains("allow_non_loopback"), "{e}");
    let a = TestAgent::start(
        "[agent.tcp]\naddress = \"0.0.0.0:0\"\nallow_non_loopback = true\n[stores.mem.memory]\n",
    )
    .await;
    assert!(a.agent().tcp_addr().unwrap().ip().is_unspecified());
}

#[tokio::test]
async fn a_busy_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let e = TestAgent::try_start(&format!(
        "[agent.tcp]\naddress = \"127.0.0.1:{port}\"\n[stores.mem.memory]\n"
    ))
    .await
    .err()
    .expect("refused");
    assert!(
        e.message()
            .contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{e}"
    );
}
