//! An inline token, secret id or key never appears in any `Debug`, `Display` or error output
//! of the configuration, the stores it builds, or the errors on the way.

use kms::{Config, Opener, SecretRef, StoreConfig};

const TOKEN: &str = "hvs.INLINE-TOKEN-0123456789";
const ROLE_ID: &str = "ROLE-ID-INLINE-2468";
const SECRET_ID: &str = "SECRET-ID-INLINE-13579";
const AWS_SECRET: &str = "wJalrXUtnFEMIK7MDENGbPxRfiCYINLINE";
const MASTER: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn assert_clean(what: &str, text: &str) {
    for secret in [TOKEN, ROLE_ID, SECRET_ID, AWS_SECRET, MASTER, "INLINE"] {
        assert!(!text.contains(secret), "{what} shows a secret: {text}");
    }
}

fn toml() -> String {
    format!(
        r#"
[stores.token.vault]
address = "http://127.0.0.1:1"
auth.token = "{TOKEN}"

[stores.approle.vault]
address = "http://127.0.0.1:1"
auth = {{ method = "approle", role_id = "{ROLE_ID}", secret_id = "{SECRET_ID}" }}

[stores.aws.aws]
region = "us-east-1"
endpoint_url = "http://127.0.0.1:1"
access_key_id = "AKIDEXAMPLE"
secret_access_key = "{AWS_SECRET}"

[stores.sealed.memory]
[stores.sealed.envelope]
provider = "local"
master_key = "{MASTER}"
"#
    )
}

#[tokio::test]
async fn inline_secrets_never_show() {
    let config = Config::from_toml_str(&toml()).unwrap();
    assert_clean("Config Debug", &format!("{config:?}"));
    assert_clean("Config pretty Debug", &format!("{config:#?}"));
    for name in ["token", "approle", "aws", "sealed"] {
        let store = config.store(name).unwrap();
        assert_clean("StoreConfig Debug", &format!("{store:?}"));
    }
    // Building against an unreachable server: the error names the key, not the secret.
    for name in ["token", "approle"] {
        let err = config.open(name).await.unwrap_err();
        assert_clean("build error Display", &err.to_string());
        assert_clean("build error Debug", &format!("{err:?}"));
    }
    let stack = Opener::new().open_named(&config, "sealed").await.unwrap();
    assert_clean("Stack Debug", &format!("{stack:?}"));
    assert_clean("Stack Display", &stack.to_string());
    let stack = Opener::new().open_named(&config, "aws").await.unwrap();
    assert_clean("AWS Stack Debug", &format!("{stack:?} {stack}"));
}

#[tokio::test]
async fn inline_secrets_in_uris_never_show() {
    let uri = format!(
        "vault+http://127.0.0.1:1/secret?auth.method=approle&auth.role_id={ROLE_ID}&auth.secret_id={SECRET_ID}"
    );
    let parsed = StoreConfig::from_uri(&uri).unwrap();
    assert_clean("StoreConfig from URI", &format!("{parsed:?}"));
    let err = kms::open(&uri).await.unwrap_err();
    assert_clean("URI build error", &format!("{err} {err:?}"));
    // A secret in a query key that is then rejected: the error shows the key, not the URI.
    let err = kms::open(&format!(
        "vault+http://127.0.0.1:1/secret?auth.token={TOKEN}&bogus=1"
    ))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("`bogus`"), "{err}");
    assert_clean("unknown-key error", &format!("{err} {err:?}"));
    // Userinfo and unsupported schemes never echo the URI.
    let err = kms::open(&format!("vault+https://{TOKEN}@vault.example/secret"))
        .await
        .unwrap_err();
    assert_clean("userinfo error", &format!("{err} {err:?}"));
    let err = kms::open(&format!("nope://x?token={TOKEN}"))
        .await
        .unwrap_err();
    assert_clean("scheme error", &format!("{err} {err:?}"));
}

#[tokio::test]
async fn secrets_given_with_the_wrong_type_or_in_the_wrong_place_never_show() {
    // A secret-typed option given a number: the number is not echoed.
    let err = Config::from_toml_str(
        "[stores.t.vault]\naddress = \"http://127.0.0.1:1\"\nauth.token = 987654321987",
    )
    .unwrap_err();
    assert!(!err.to_string().contains("987654321987"), "{err}");
    assert!(
        err.to_string().contains("`stores.t.vault.auth.token`"),
        "{err}"
    );
    // A secret set for a method that does not use it: the key is named, not the value.
    let config = Config::from_toml_str(&format!(
        "[stores.t.vault]\naddress = \"http://127.0.0.1:1\"\nauth = {{ token = \"t\", secret_id = \"{SECRET_ID}\" }}"
    ))
    .unwrap();
    let err = config.open("t").await.unwrap_err();
    assert!(
        err.to_string().contains("`stores.t.vault.auth.secret_id`"),
        "{err}"
    );
    assert_clean("misplaced secret", &format!("{err} {err:?}"));
    // A TOML syntax error on the line holding a secret.
    let err = Config::from_toml_str(&format!(
        "[stores.t.vault]\nauth.token = \"{TOKEN}\" trailing"
    ))
    .unwrap_err();
    assert_clean("syntax error", &format!("{err} {err:?}"));
    // A bad master key.
    let config = Config::from_toml_str(
        "[stores.t.memory]\n[stores.t.envelope]\nprovider = \"local\"\nmaster_key = \"INLINEshort\"",
    )
    .unwrap();
    let err = config.open("t").await.unwrap_err();
    assert_clean("bad master key", &format!("{err} {err:?}"));
}

#[test]
fn secret_refs_show_references_and_hide_values() {
    assert_eq!(SecretRef::inline(TOKEN).to_string(), "[REDACTED]");
    assert_eq!(format!("{:?}", SecretRef::inline(TOKEN)), "[REDACTED]");
    assert_eq!(SecretRef::env("VAULT_TOKEN").to_string(), "env:VAULT_TOKEN");
}
