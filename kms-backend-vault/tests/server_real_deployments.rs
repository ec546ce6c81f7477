//! Deployments as teams already run them, against a real OpenBao: secrets written with
//! `bao kv put` are readable (one field, or the whole JSON object), the client reads the
//! CLI's environment, starts before Vault (lazy), and names the cause of a wrong address.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kms_backend_vault::{VaultAuth, VaultClient, VaultClientBuilder, VaultStore};
use kms_core::{ErrorKind, KeyName, KeyStore, KeyStoreExt, json_field};

fn bao(args: &[&str]) {
    let status = Command::new("bao")
        .args(args)
        .env("BAO_ADDR", common::addr())
        .env("BAO_TOKEN", common::root_token())
        .stdout(Stdio::null())
        .status()
        .expect("`bao` on PATH (scripts/peers/openbao.sh installs it)");
    assert!(status.success(), "bao {args:?}");
}

#[tokio::test]
async fn secrets_written_with_bao_kv_put_are_readable() {
    let path = format!("kms-tests/{}/app/db", common::unique("bao-put"));
    bao(&[
        "kv",
        "put",
        &format!("secret/{path}"),
        "username=app",
        "password=s3cr3t",
    ]);
    let client = common::root_client().await;
    let key = KeyName::new(&path).unwrap();

    // The whole secret: its data object as JSON, which a generic field read can use.
    let whole = VaultStore::builder(client.clone()).build().unwrap();
    let got = whole.get(&key).await.unwrap();
    assert_eq!(
        got.value.expose_str().unwrap(),
        r#"{"password":"s3cr3t","username":"app"}"#
    );
    assert_eq!(got.meta.version.as_deref(), Some("1"));
    assert_eq!(
        json_field(&got.value, "password")
            .unwrap()
            .expose_str()
            .unwrap(),
        "s3cr3t"
    );
    assert_eq!(
        whole
            .get_field(&path, "username")
            .await
            .unwrap()
            .expose_str()
            .unwrap(),
        "app"
    );

    // One field, the Vault-native way.
    let password = VaultStore::builder(client.clone())
        .field("password")
        .build()
        .unwrap();
    assert_eq!(password.to_string(), "Vault(kv2:secret#password)");
    assert_eq!(
        password
            .get(&key)
            .await
            .unwrap()
            .value
            .expose_str()
            .unwrap(),
        "s3cr3t"
    );
    // Writing the field keeps the others (a check-and-set write: version 2).
    let m = password.store(&key, "rotated".into()).await.unwrap();
    assert_eq!(m.version.as_deref(), Some("2"));
    let raw = common::admin("GET", &format!("secret/data/{path}"), None).await;
    assert_eq!(
        raw["data"]["data"],
        serde_json::json!({"username": "app", "password": "rotated"})
    );
    // A field that is not there is InvalidData naming the field, never a value.
    let host = VaultStore::builder(client.clone())
        .field("host")
        .build()
        .unwrap();
    let err = host.get(&key).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("host"), "{err}");
    assert!(!err.to_string().contains("rotated"), "{err}");
    assert_eq!(
        host.remove(&key).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // Binary values cannot go into a field: refused before any I/O.
    let err = password
        .store(&key, kms_core::SecretValue::new(vec![0xff, 0x00]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    // Removing the field keeps the secret; removing the last field removes it.
    password.remove(&key).await.unwrap();
    let raw = common::admin("GET", &format!("secret/data/{path}"), None).await;
    assert_eq!(raw["data"]["data"], serde_json::json!({"username": "app"}));
    let username = VaultStore::builder(client.clone())
        .field("username")
        .build()
        .unwrap();
    username.remove(&key).await.unwrap();
    assert_eq!(
        whole.get(&key).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // A field store creates a secret that does not exist yet.
    let fresh = KeyName::new(format!("kms-tests/{}", common::unique("field-new"))).unwrap();
    password.store(&fresh, "p".into()).await.unwrap();
    assert_eq!(
        whole.get(&fresh).await.unwrap().value.expose_str().unwrap(),
        r#"{"password":"p"}"#
    );
    whole.remove(&fresh).await.unwrap();
    // Creating a secret over a soft-deleted latest version (its metadata remains): the
    // check-and-set is against the metadata's current version, so it still succeeds.
    let deleted = KeyName::new(format!("kms-tests/{}", common::unique("field-del"))).unwrap();
    whole.store(&deleted, "old".into()).await.unwrap();
    common::admin("DELETE", &format!("secret/data/{}", deleted.as_str()), None).await;
    let m = password.store(&deleted, "p2".into()).await.unwrap();
    assert_eq!(m.version.as_deref(), Some("2"));
    assert_eq!(
        whole
            .get(&deleted)
            .await
            .unwrap()
            .value
            .expose_str()
            .unwrap(),
        r#"{"password":"p2"}"#
    );
    whole.remove(&deleted).await.unwrap();
}

/// `from_env()` reads the process environment. Run plainly, it reads what `scripts/test`
/// exports (`BAO_ADDR`, `BAO_TOKEN`); run as a child of
/// `from_env_prefers_the_vault_variables`, it checks that `VAULT_*` win over `BAO_*`.
#[tokio::test]
async fn from_env_reads_the_process_environment() {
    let client = VaultClientBuilder::from_env().build().await.unwrap();
    if std::env::var("KMS_TEST_FROM_ENV_CHILD").is_ok() {
        assert_eq!(client.address(), common::addr());
        assert_eq!(client.namespace(), None, "VAULT_NAMESPACE=root is the root");
    }
    let store = VaultStore::builder(client).build().unwrap();
    store.health().await.unwrap();
}

#[test]
fn from_env_prefers_the_vault_variables() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "from_env_reads_the_process_environment"])
        .env("KMS_TEST_FROM_ENV_CHILD", "1")
        .env("VAULT_ADDR", common::addr())
        .env("VAULT_TOKEN", common::root_token())
        .env("VAULT_NAMESPACE", "root")
        .env("BAO_ADDR", &dead_addr)
        .env("BAO_TOKEN", "wrong")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran the test: {stdout}"
    );
}

#[tokio::test]
async fn https_against_http_and_http_against_https_name_the_cause() {
    // OpenBao's plain listener, spoken to with TLS.
    let plain = common::addr().replace("http://", "https://");
    let err = VaultClient::builder(&plain)
        .auth(VaultAuth::token(common::root_token()))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&plain), "{msg}");
    assert!(
        msg.contains("does not speak TLS (use an http:// address?)"),
        "{msg}"
    );

    // The TLS listener, spoken to in plain HTTP.
    let tls = std::env::var("KMS_TEST_VAULT_TLS_ADDR")
        .expect("KMS_TEST_VAULT_TLS_ADDR is not set: see scripts/peers/openbao.sh")
        .replace("https://", "http://");
    let err = VaultClient::builder(&tls)
        .auth(VaultAuth::token(common::root_token()))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&tls), "{msg}");
    assert!(
        msg.contains("speaks HTTPS; use an https:// address"),
        "{msg}"
    );
}

/// Kills the dev server this test started, whatever happens.
struct OwnServer(std::process::Child);

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A service starts before its Vault: a lazy client fails with `Unavailable` naming the
/// address while nothing listens, then works once the server is up (its own dev server on a
/// free port, stopped at the end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_client_starts_before_vault() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let addr = format!("http://127.0.0.1:{port}");
    let client = VaultClient::builder(&addr)
        .auth(VaultAuth::token("root"))
        .timeout(Duration::from_secs(2))
        .build_lazy()
        .unwrap();
    let store = VaultStore::builder(client).build().unwrap();
    let k = KeyName::new("lazy/key").unwrap();
    let err = store.get(&k).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains(&addr), "{err}");

    let _server = OwnServer(
        Command::new("bao")
            .args([
                "server",
                "-dev",
                "-dev-root-token-id=root",
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("`bao` on PATH"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.health().await.is_err() {
        assert!(Instant::now() < deadline, "the dev server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.get(&k).await.unwrap_err().kind(), ErrorKind::NotFound);
    store.store(&k, "up".into()).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap().value.expose_secret(), b"up");
}
