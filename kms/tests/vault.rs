//! Vault / OpenBao opened from a URI and from TOML against the real dev server (KV v2, KV v1,
//! TLS with a CA file, AppRole from `file:` references, envelope with Vault Transit), with
//! validate + cache + resilience + metrics from the same text, through the conformance suite.

mod common;

use kms::{Config, ErrorKind, KeyStoreExt};

/// The dev server's address, as a `vault+http://…` authority.
fn authority() -> String {
    let addr = std::env::var("KMS_TEST_VAULT_ADDR").expect(
        "KMS_TEST_VAULT_ADDR is not set: start the OpenBao dev server (scripts/peers/openbao.sh)",
    );
    assert!(
        std::env::var_os("KMS_TEST_VAULT_TOKEN").is_some(),
        "KMS_TEST_VAULT_TOKEN is not set: see scripts/peers/openbao.sh"
    );
    format!("vault+{addr}")
}

fn kv2_uri() -> String {
    format!(
        "{}/secret/kms-facade/uri?auth.token=env:KMS_TEST_VAULT_TOKEN&request_timeout=5s&{}",
        authority(),
        common::layer_query("kms_facade_vault_uri")
    )
}

fn kv1_toml() -> String {
    let addr = std::env::var("KMS_TEST_VAULT_ADDR").expect("KMS_TEST_VAULT_ADDR");
    format!(
        r#"
[stores.kv1.vault]
address = "{addr}"
mount = "kv1"
kv_version = 1
prefix = "kms-facade/toml"
request_timeout = "5s"
renew_fraction = 0.5
auth.token = "env:KMS_TEST_VAULT_TOKEN"
{}"#,
        common::layer_toml("kv1", "kms_facade_vault_toml")
    )
}

mod kv2_from_uri {
    use super::*;
    kms_core::conformance_tests!(kms::open(&kv2_uri()).await.expect("opens"));
}

mod kv1_from_toml {
    use super::*;
    kms_core::conformance_tests!(
        Config::from_toml_str(&kv1_toml())
            .expect("parses")
            .open("kv1")
            .await
            .expect("opens")
    );
}

mod envelope_with_transit_from_uri {
    use super::*;
    kms_core::conformance_tests!(
        kms::open(&format!(
            "{}/secret/kms-facade/transit?auth.token=env:KMS_TEST_VAULT_TOKEN\
             &envelope.provider=vault-transit&envelope.key=kms-facade-conformance\
             &envelope.create_key=true&envelope.context.suite=conformance&{}",
            authority(),
            common::layer_query("kms_facade_vault_transit")
        ))
        .await
        .expect("opens")
    );
}

#[tokio::test]
async fn the_stack_and_the_options_reach_vault() {
    let store = kms::open(&kv2_uri()).await.unwrap();
    assert_eq!(
        store.to_string(),
        common::layered("Vault(kv2:secret/kms-facade/uri)")
    );
    let name = common::unique("facade");
    store.put(&name, "v1").await.unwrap();
    // soft_delete keeps the metadata: the key is still listed after remove.
    let soft = kms::open(&format!(
        "{}/secret/kms-facade/uri?auth.token=env:KMS_TEST_VAULT_TOKEN&remove_mode=soft_delete",
        authority()
    ))
    .await
    .unwrap();
    soft.delete(&name).await.unwrap();
    assert_eq!(
        soft.get_value(&name).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let listed = soft.list_sorted("").await.unwrap();
    assert!(listed.iter().any(|k| k.as_str() == name), "{listed:?}");
}

#[tokio::test]
async fn tls_with_a_ca_file() {
    let tls = std::env::var("KMS_TEST_VAULT_TLS_ADDR").expect("KMS_TEST_VAULT_TLS_ADDR");
    let ca = std::env::var("KMS_TEST_VAULT_CA_CERT").expect("KMS_TEST_VAULT_CA_CERT");
    let host = tls.trim_start_matches("https://");
    let store = kms::open(&format!(
        "vault+https://{host}/secret/kms-facade/tls?auth.token=env:KMS_TEST_VAULT_TOKEN&ca_cert={ca}"
    ))
    .await
    .unwrap();
    let name = common::unique("tls");
    store.put(&name, "over tls").await.unwrap();
    assert_eq!(
        store.get_value(&name).await.unwrap().expose_str().unwrap(),
        "over tls"
    );
    store.delete(&name).await.unwrap();
    // Without the CA the server's certificate is not trusted: not a silent success.
    let err = kms::open(&format!(
        "vault+https://{host}/secret?auth.token=env:KMS_TEST_VAULT_TOKEN"
    ))
    .await
    .unwrap_err();
    assert_ne!(err.kind(), ErrorKind::Configuration, "{err}");
}

/// Runs the `bao` CLI against the dev server with the root token.
fn bao(args: &[&str]) -> String {
    let out = std::process::Command::new("bao")
        .args(args)
        .env("VAULT_ADDR", std::env::var("KMS_TEST_VAULT_ADDR").unwrap())
        .env("BAO_ADDR", std::env::var("KMS_TEST_VAULT_ADDR").unwrap())
        .env(
            "VAULT_TOKEN",
            std::env::var("KMS_TEST_VAULT_TOKEN").unwrap(),
        )
        .env("BAO_TOKEN", std::env::var("KMS_TEST_VAULT_TOKEN").unwrap())
        .output()
        .expect("the bao CLI (on PATH via /work/tools/peers.env or scripts/peers/openbao.sh)");
    assert!(
        out.status.success(),
        "bao {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn approle_from_file_references() {
    let role = common::unique("facade-role").replace(['/', '.'], "-");
    bao(&[
        "write",
        &format!("auth/approle/role/{role}"),
        "token_policies=default",
        "token_ttl=1m",
        "token_max_ttl=5m",
    ]);
    let role_id = bao(&[
        "read",
        "-field=role_id",
        &format!("auth/approle/role/{role}/role-id"),
    ]);
    let secret_id = bao(&[
        "write",
        "-f",
        "-field=secret_id",
        &format!("auth/approle/role/{role}/secret-id"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let role_file = dir.path().join("role-id");
    let secret_file = dir.path().join("secret-id");
    std::fs::write(&role_file, format!("{role_id}\n")).unwrap();
    std::fs::write(&secret_file, format!("{secret_id}\n")).unwrap();
    let addr = std::env::var("KMS_TEST_VAULT_ADDR").unwrap();
    let config = Config::from_toml_str(&format!(
        r#"
[stores.app.vault]
address = "{addr}"
[stores.app.vault.auth]
method = "approle"
role_id = "file:{}"
secret_id = "file:{}"
"#,
        role_file.display(),
        secret_file.display()
    ))
    .unwrap();
    assert!(!format!("{config:?}").contains(&secret_id));
    // The login happened at build (a rejected login fails the build as unauthenticated):
    // the AppRole token only has the default policy, so KV is refused, never unauthenticated.
    let store = config.open("app").await.unwrap();
    let err = store.get_value("kms-facade/approle").await.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::PermissionDenied | ErrorKind::Configuration
        ),
        "{err}"
    );
    assert!(!err.to_string().contains(&secret_id));
    // A wrong secret id from the same kind of file: the build fails, and does not show it.
    std::fs::write(&secret_file, "00000000-0000-0000-0000-000000000000\n").unwrap();
    let config = Config::from_toml_str(&format!(
        "[stores.app.vault]\naddress = \"{addr}\"\nauth = {{ method = \"approle\", role_id = \"file:{}\", secret_id = \"file:{}\" }}\n",
        role_file.display(),
        secret_file.display()
    ))
    .unwrap();
    let err = config.open("app").await.unwrap_err();
    assert_ne!(err.kind(), ErrorKind::Configuration, "{err}");
    assert!(!err.to_string().contains("00000000-0000"), "{err}");
}

#[tokio::test]
async fn a_wrong_inline_token_is_an_error_that_does_not_show_it() {
    let token = "hvs.NOT-A-REAL-TOKEN-31337";
    let err = kms::open(&format!("{}/secret?auth.token={token}", authority()))
        .await
        .unwrap_err();
    assert_ne!(err.kind(), ErrorKind::Configuration, "{err}");
    assert!(!format!("{err} {err:?}").contains("31337"), "{err}");
}
