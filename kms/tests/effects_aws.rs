//! The AWS options change what is sent: each test puts a recording proxy in front of moto
//! (`KMS_TEST_AWS_ENDPOINT`) as the `endpoint_url`, and observes the requests an option
//! changes (SigV4 scope and signature, headers, request bodies), or injects a fault an option
//! handles. `observes!` marks the options covered (see `options_reference.rs`). As
//! `aws.*` for Secrets Manager and `envelope.aws.*` for AWS KMS under a memory store.

mod common;

use std::time::{Duration, Instant};

use common::http::{Faults, Handler, Request, Server, forward};
use hmac::Mac;
use kms::{KeyStoreExt, MetricsRegistry, Opener, Stack};
use serde_json::Value;
use sha2::Digest;

fn moto() -> String {
    std::env::var("KMS_TEST_AWS_ENDPOINT")
        .expect("KMS_TEST_AWS_ENDPOINT is not set: start moto (scripts/peers/moto.sh)")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// A recording proxy to moto.
async fn proxy() -> Server {
    let upstream = moto();
    let handler: Handler = std::sync::Arc::new(move |r: &Request| forward(&upstream, r));
    Server::start(handler).await
}

/// A fresh KMS key on moto in `region`.
async fn kms_key(region: &str) -> String {
    let sdk = kms::aws::AwsConnection::new()
        .region(region.to_owned())
        .endpoint_url(format!("http://{}", moto()))
        .static_credentials("testing", "testing".to_owned(), None)
        .load()
        .await
        .expect("the emulator's SdkConfig");
    let client = kms::aws::sdk::aws_sdk_kms::Client::new(&sdk);
    let key = client.create_key().send().await.expect("CreateKey on moto");
    key.key_metadata().unwrap().key_id().to_owned()
}

/// Opens a Secrets Manager store (`base` = `aws`) or a memory store sealed with AWS KMS
/// (`base` = `envelope.aws`) through `proxy`, with `query` (`{b}` = the base).
async fn connection(proxy: &Server, base: &str, query: &str, region: &str) -> kms::Result<Stack> {
    connection_to(&proxy.url(), base, query, region).await
}

/// As [`connection`], to the endpoint `endpoint`.
async fn connection_to(
    endpoint: &str,
    base: &str,
    query: &str,
    region: &str,
) -> kms::Result<Stack> {
    let uri = if base == "aws" {
        let ns = common::unique("fx").replace('/', "-");
        format!(
            "aws-sm:///{ns}?endpoint_url={endpoint}&deletion=force&{}",
            query.replace("{b}.", "")
        )
    } else {
        format!(
            "memory://?envelope.provider=aws-kms&envelope.key={}&envelope.aws.endpoint_url={endpoint}&{}",
            kms_key(region).await,
            query.replace("{b}", base)
        )
    };
    Opener::new()
        .metrics_registry(MetricsRegistry::new())
        .open(&uri)
        .await
}

/// The `x-amz-target` of each request (`secretsmanager.CreateSecret`, `TrentService.…`).
fn targets(p: &Server) -> Vec<String> {
    p.requests()
        .iter()
        .filter_map(|r| r.header("x-amz-target").map(str::to_owned))
        .collect()
}

/// The JSON body of the first request whose target ends with `op`.
fn body_of(p: &Server, op: &str) -> Value {
    let r = p
        .requests()
        .into_iter()
        .find(|r| r.header("x-amz-target").is_some_and(|t| t.ends_with(op)))
        .unwrap_or_else(|| panic!("no {op} in {:?}", targets(p)));
    serde_json::from_slice(&r.body).unwrap()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// Whether `r`'s SigV4 signature was made with `secret` (the canonical request rebuilt from
/// what the proxy received).
fn signed_with(r: &Request, secret: &str) -> bool {
    let auth = r.header("authorization").expect("a signed request");
    let field = |name: &str| {
        auth.split([' ', ','])
            .find_map(|p| p.strip_prefix(name))
            .unwrap_or_default()
            .to_owned()
    };
    let credential = field("Credential=");
    let scope = credential.split_once('/').unwrap().1.to_owned();
    let parts: Vec<&str> = scope.split('/').collect();
    let signed = field("SignedHeaders=");
    let headers: String = signed
        .split(';')
        .map(|h| format!("{h}:{}\n", r.header(h).unwrap_or_default().trim()))
        .collect();
    let payload = r
        .header("x-amz-content-sha256")
        .map(str::to_owned)
        .unwrap_or_else(|| hex::encode(sha2::Sha256::digest(&r.body)));
    let canonical = format!(
        "{}\n{}\n{}\n{headers}\n{signed}\n{payload}",
        r.method, r.path, r.query
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        r.header("x-amz-date").unwrap_or_default(),
        hex::encode(sha2::Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), parts[0]);
    for p in &parts[1..] {
        key = hmac(&key, p);
    }
    hex::encode(hmac(&key, &to_sign)) == field("Signature=")
}

/// A write and a read (Secrets Manager calls, or a KMS data key).
async fn use_it(s: &Stack) -> kms::Result<()> {
    s.store().put("used", "value").await?;
    s.store().get_value("used").await.map(drop)
}

const STATIC: &str = "{b}.access_key_id=AKIDFX&{b}.secret_access_key=secret-A";

#[tokio::test]
async fn region_endpoint_and_static_credentials_sign_every_request() {
    observes!(
        "aws.region",
        "aws.endpoint_url",
        "aws.access_key_id",
        "aws.secret_access_key",
        "aws.session_token",
        "envelope.aws.region",
        "envelope.aws.endpoint_url",
        "envelope.aws.access_key_id",
        "envelope.aws.secret_access_key",
        "envelope.aws.session_token"
    );
    for (base, service) in [("aws", "secretsmanager"), ("envelope.aws", "kms")] {
        let p = proxy().await;
        let s = connection(
            &p,
            base,
            &format!("{STATIC}&{{b}}.region=eu-west-1&{{b}}.session_token=tok-fx"),
            "eu-west-1",
        )
        .await
        .unwrap();
        use_it(&s).await.unwrap();
        let requests = p.requests();
        assert!(!requests.is_empty(), "{base}: nothing reached the endpoint");
        for r in &requests {
            let auth = r.header("authorization").unwrap();
            assert!(
                auth.contains("Credential=AKIDFX/")
                    && auth.contains(&format!("/eu-west-1/{service}/aws4_request")),
                "{base}: {auth}"
            );
            assert_eq!(r.header("x-amz-security-token"), Some("tok-fx"), "{base}");
            assert!(
                signed_with(r, "secret-A"),
                "{base}: not signed with the secret"
            );
            assert!(!signed_with(r, "secret-B"), "{base}: the check checks");
        }
    }
}

#[tokio::test]
async fn sdk_retries_retry_a_failed_request() {
    observes!("aws.sdk_retries", "envelope.aws.sdk_retries");
    for base in ["aws", "envelope.aws"] {
        for (flag, ok) in [("true", true), ("false", false)] {
            let p = proxy().await;
            let s = connection(
                &p,
                base,
                &format!("{STATIC}&{{b}}.region=us-east-1&{{b}}.sdk_retries={flag}"),
                "us-east-1",
            )
            .await
            .unwrap();
            p.set_faults(Faults {
                status: Some(500),
                times: Some(1),
                ..Faults::default()
            });
            let got = s.store().put("k", "v").await;
            assert_eq!(got.is_ok(), ok, "{base} sdk_retries={flag}: {got:?}");
        }
    }
}

#[tokio::test]
async fn the_operation_timeout_bounds_a_call() {
    observes!("aws.operation_timeout", "envelope.aws.operation_timeout");
    for base in ["aws", "envelope.aws"] {
        let p = proxy().await;
        let s = connection(
            &p,
            base,
            &format!("{STATIC}&{{b}}.region=us-east-1&{{b}}.operation_timeout=300ms"),
            "us-east-1",
        )
        .await
        .unwrap();
        p.set_faults(Faults {
            delay: Some(Duration::from_secs(3)),
            ..Faults::default()
        });
        let started = Instant::now();
        assert!(s.store().put("k", "v").await.is_err(), "{base}");
        assert!(started.elapsed() < Duration::from_secs(2), "{base}");
    }
}

/// A listener whose accept queue is full: a connection to it hangs in the handshake.
struct BlackHole {
    addr: std::net::SocketAddr,
    _held: Vec<std::net::TcpStream>,
    _listener: tokio::net::TcpListener,
}

fn black_hole() -> BlackHole {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    while let Ok(c) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
        held.push(c);
        assert!(held.len() < 64, "the accept queue never filled");
    }
    BlackHole {
        addr,
        _held: held,
        _listener: listener,
    }
}

#[tokio::test]
async fn the_connect_timeout_bounds_the_handshake() {
    observes!("aws.connect_timeout", "envelope.aws.connect_timeout");
    for base in ["aws", "envelope.aws"] {
        for (timeout, quick) in [("200ms", true), ("2s", false)] {
            let hole = black_hole();
            let s = connection_to(
                &format!("http://{}", hole.addr),
                base,
                &format!("{STATIC}&{{b}}.region=us-east-1&{{b}}.connect_timeout={timeout}"),
                "us-east-1",
            )
            .await
            .unwrap();
            let started = Instant::now();
            assert!(s.store().put("k", "v").await.is_err(), "{base}");
            let took = started.elapsed();
            assert_eq!(
                took < Duration::from_millis(1500),
                quick,
                "{base} {timeout}: {took:?}"
            );
        }
    }
}

#[tokio::test]
async fn secrets_manager_options_shape_the_calls() {
    observes!(
        "aws.namespace",
        "aws.version_stage",
        "aws.kms_key_id",
        "aws.description",
        "aws.tags.<name>",
        "aws.list_page_size"
    );
    let p = proxy().await;
    let key = kms_key("us-east-1").await;
    let ns = common::unique("fx-ns").replace('/', "-");
    let s = Opener::new()
        .open(&format!(
            "aws-sm://us-east-1/{ns}?endpoint_url={}&access_key_id=a&secret_access_key=b\
             &deletion=force&version_stage=AWSCURRENT&kms_key_id={key}&description=fx%20store\
             &tags.owner=payments&list_page_size=7",
            p.url()
        ))
        .await
        .unwrap();
    s.store().put("k", "v").await.unwrap();
    s.store().get_value("k").await.unwrap();
    s.store().list_sorted("").await.unwrap();
    let create = body_of(&p, "CreateSecret");
    assert_eq!(create["Name"], format!("{ns}/k"));
    assert_eq!(create["KmsKeyId"], key.as_str());
    assert_eq!(create["Description"], "fx store");
    assert_eq!(
        create["Tags"],
        serde_json::json!([{ "Key": "owner", "Value": "payments" }])
    );
    assert_eq!(body_of(&p, "GetSecretValue")["VersionStage"], "AWSCURRENT");
    assert_eq!(body_of(&p, "ListSecrets")["MaxResults"], 7);
    s.store().delete("k").await.unwrap();
}

#[tokio::test]
async fn deletion_recovery_and_restore() {
    observes!(
        "aws.deletion",
        "aws.recovery_window_days",
        "aws.restore_deleted"
    );
    let p = proxy().await;
    let ns = common::unique("fx-del").replace('/', "-");
    let open = |q: &str| {
        let url = format!(
            "aws-sm://us-east-1/{ns}?endpoint_url={}&access_key_id=a&secret_access_key=b&{q}",
            p.url()
        );
        async move { Opener::new().open(&url).await.unwrap() }
    };
    let s = open("recovery_window_days=7&restore_deleted=true").await;
    s.store().put("k", "v1").await.unwrap();
    s.store().delete("k").await.unwrap();
    assert_eq!(body_of(&p, "DeleteSecret")["RecoveryWindowInDays"], 7);
    s.store().put("k", "v2").await.unwrap();
    assert!(
        targets(&p).iter().any(|t| t.ends_with("RestoreSecret")),
        "{:?}",
        targets(&p)
    );
    p.clear();
    let forced = open("deletion=force").await;
    forced.store().delete("k").await.unwrap();
    assert_eq!(
        body_of(&p, "DeleteSecret")["ForceDeleteWithoutRecovery"],
        true
    );
}

/// `profile` is read from the shared config files, which the SDK finds through the process
/// environment: the check runs in a child process of this test binary with them set.
#[test]
fn the_profile_supplies_region_and_credentials() {
    observes!("aws.profile", "envelope.aws.profile");
    const CHILD: &str = "KMS_TEST_PROFILE_CHILD";
    if std::env::var_os(CHILD).is_some() {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            for (base, service) in [("aws", "secretsmanager"), ("envelope.aws", "kms")] {
                let p = proxy().await;
                let s = connection(&p, base, "{b}.profile=fx", "eu-west-2")
                    .await
                    .unwrap();
                use_it(&s).await.unwrap();
                for r in p.requests() {
                    let auth = r.header("authorization").unwrap();
                    assert!(
                        auth.contains("Credential=AKIDPROFILE/")
                            && auth.contains(&format!("/eu-west-2/{service}/")),
                        "{base}: {auth}"
                    );
                    assert!(signed_with(&r, "secret-P"), "{base}");
                }
            }
        });
        println!("child checked profiles");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let credentials = dir.path().join("credentials");
    std::fs::write(&config, "[profile fx]\nregion = eu-west-2\n").unwrap();
    std::fs::write(
        &credentials,
        "[fx]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = secret-P\n",
    )
    .unwrap();
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "the_profile_supplies_region_and_credentials",
        "--nocapture",
    ])
    .env(CHILD, "1")
    .env("AWS_CONFIG_FILE", &config)
    .env("AWS_SHARED_CREDENTIALS_FILE", &credentials);
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("child checked profiles"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `rotation_schedule` describes a secret once per version read and reports its next
/// rotation; without it, no `DescribeSecret` is sent and no date is reported.
#[tokio::test]
async fn rotation_schedule_reports_the_next_rotation_for_one_describe_per_version() {
    observes!("aws.rotation_schedule");
    let p = proxy().await;
    let ns = common::unique("rotcache-fx").replace('/', "-");
    let open = |q: &str| {
        let url = format!(
            "aws-sm://us-east-1/{ns}?endpoint_url={}&access_key_id=a&secret_access_key=b&deletion=force&{q}",
            p.url()
        );
        async move { Opener::new().open(&url).await.unwrap() }
    };
    let on = open("rotation_schedule=true").await;
    on.store().put("k", "v1").await.unwrap();
    // A rotation schedule of 7 days (moto publishes NextRotationDate = now + 7 days).
    let sdk = kms::aws::AwsConnection::new()
        .region("us-east-1".to_owned())
        .endpoint_url(format!("http://{}", moto()))
        .static_credentials("a", "b".to_owned(), None)
        .load()
        .await
        .unwrap();
    let client = kms::aws::sdk::aws_sdk_secretsmanager::Client::new(&sdk);
    client
        .rotate_secret()
        .secret_id(format!("{ns}/k"))
        .rotation_rules(
            kms::aws::sdk::aws_sdk_secretsmanager::types::RotationRulesType::builder()
                .automatically_after_days(7)
                .build(),
        )
        .rotate_immediately(false)
        .send()
        .await
        .unwrap();
    let key = kms::KeyName::new("k").unwrap();
    p.clear();
    let next = on.store().get(&key).await.unwrap().meta.next_rotation;
    let in_a_week = std::time::SystemTime::now() + Duration::from_secs(7 * 86_400);
    let next = next.expect("a next rotation");
    let off_by = next
        .duration_since(in_a_week)
        .unwrap_or_else(|e| e.duration());
    assert!(off_by < Duration::from_secs(120), "{next:?}");
    let describes = |p: &Server| {
        targets(p)
            .iter()
            .filter(|t| t.ends_with("DescribeSecret"))
            .count()
    };
    assert_eq!(describes(&p), 1);
    on.store().get(&key).await.unwrap();
    assert_eq!(describes(&p), 1, "the same version is not described again");

    let off = open("").await;
    p.clear();
    assert_eq!(
        off.store().get(&key).await.unwrap().meta.next_rotation,
        None
    );
    assert_eq!(describes(&p), 0);
}
