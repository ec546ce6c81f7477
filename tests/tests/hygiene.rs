//! Secret hygiene checked by the compiler and at run time.
//!
//! - `ui/no_display.rs`, `ui/no_serialize.rs` (trybuild): every type that holds a secret
//!   value or a credential implements neither `Display` nor `Serialize`; the expected
//!   compiler output lists one refusal per type, so a type that gains either trait fails.
//! - The tests below build each of those types around a canary and check that its `Debug`
//!   (and, for the stores and providers, whose `Display` names the stack, that too) never
//!   shows it.

use std::sync::Arc;

use kms_core::{DataKey, KeyStore, LocalKeyProvider, SecretValue, StoredSecret};

const CANARY: &str = "HygieneCanary4Q7m";
const CANARY2: &str = "HygieneToken9Zx2w";

fn clean(what: &str, shown: &str) {
    assert!(
        !shown.contains(CANARY) && !shown.contains(CANARY2),
        "{what} shows a secret: {shown}"
    );
}

#[test]
fn credential_holders_implement_neither_display_nor_serialize() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/no_display.rs");
    t.compile_fail("tests/ui/no_serialize.rs");
}

#[test]
fn values_and_data_keys_debug_redacted() {
    let v = SecretValue::from(CANARY);
    clean("SecretValue", &format!("{v:?} {v:#?}"));
    let s = StoredSecret::new(v.clone());
    clean("StoredSecret", &format!("{s:?} {s:#?}"));
    let k = DataKey {
        plaintext: v,
        ciphertext: CANARY2.as_bytes().to_vec(),
    };
    clean("DataKey", &format!("{k:?} {k:#?}"));
    let local = LocalKeyProvider::from_key(SecretValue::from([7u8; 32].as_slice())).unwrap();
    let shown = format!("{local:?} {local}");
    assert!(
        !shown.contains("7, 7, 7"),
        "LocalKeyProvider shows its key: {shown}"
    );
}

#[tokio::test]
async fn vault_types_debug_redacted() {
    use kms_backend_vault::{VaultAuth, VaultClient, VaultStore, VaultTransitProvider};
    for auth in [
        VaultAuth::token(CANARY),
        VaultAuth::app_role(CANARY2, CANARY),
    ] {
        clean("VaultAuth", &format!("{auth:?}"));
        let builder = VaultClient::builder("http://127.0.0.1:1")
            .auth(auth)
            .client_identity_pem(CANARY);
        clean("VaultClientBuilder", &format!("{builder:?}"));
    }
    let client = VaultClient::builder("http://127.0.0.1:1")
        .auth(VaultAuth::token(CANARY))
        .build_lazy()
        .unwrap();
    clean("VaultClient", &format!("{client:?}"));
    let builder = VaultStore::builder(client.clone());
    clean("VaultStoreBuilder", &format!("{builder:?}"));
    let store = builder.build().unwrap();
    clean("VaultStore", &format!("{store:?} {store}"));
    let transit = VaultTransitProvider::new(client, "k").unwrap();
    clean("VaultTransitProvider", &format!("{transit:?} {transit}"));
}

#[tokio::test]
async fn aws_types_debug_redacted() {
    use kms_backend_aws::{AwsConnection, AwsKmsProvider, SecretsManagerStore};
    let connection = AwsConnection::new()
        .region("us-east-1")
        .endpoint_url("http://127.0.0.1:1")
        .static_credentials(CANARY2, CANARY, Some(CANARY.into()));
    // The access key id is an identifier, not a secret; the secret key and token are.
    let shown = format!("{connection:?}");
    assert!(
        !shown.contains(CANARY),
        "AwsConnection shows a secret: {shown}"
    );
    let config = connection.load().await.unwrap();
    let store = SecretsManagerStore::builder(&config).build().unwrap();
    clean("SecretsManagerStore", &format!("{store:?} {store}"));
    let kms = AwsKmsProvider::new(&config, "alias/k").unwrap();
    clean("AwsKmsProvider", &format!("{kms:?} {kms}"));
}

#[tokio::test]
async fn facade_configuration_debug_redacted() {
    let r = kms::SecretRef::inline(CANARY);
    assert_eq!(r.to_string(), "[REDACTED]");
    clean("SecretRef", &format!("{r:?} {r}"));
    let text = format!(
        r#"
[stores.v.vault]
address = "https://vault.example:8200"
client_key = "{CANARY}"
[stores.v.vault.auth]
method = "approle"
role_id = "{CANARY2}"
secret_id = "{CANARY}"

[stores.a.aws]
region = "us-east-1"
access_key_id = "{CANARY2}"
secret_access_key = "{CANARY}"
session_token = "{CANARY2}"

[stores.m.memory]
[stores.m.envelope]
provider = "local"
master_key = "{CANARY}"
"#
    );
    let config = kms::Config::from_toml_str(&text).unwrap();
    clean("Config", &format!("{config:?} {config:#?}"));
    for name in ["v", "a", "m"] {
        clean("StoreConfig", &format!("{:?}", config.store(name).unwrap()));
    }
    let uri = format!("vault+https://vault.example:8200/secret?auth.token={CANARY}");
    let store = kms::StoreConfig::from_uri(&uri).unwrap();
    clean("StoreConfig from a URI", &format!("{store:?}"));
    // A stack opened from inline secrets: its Display and Debug name layers only.
    let b64 = "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=";
    let stack = kms::Opener::new()
        .metrics_registry(kms::MetricsRegistry::new())
        .open(&format!(
            "memory://?envelope.provider=local&envelope.master_key={b64}&cache.ttl=1m"
        ))
        .await
        .unwrap();
    let shown = format!("{stack:?} {stack} {}", stack.store());
    assert!(
        !shown.contains(b64),
        "a stack shows its master key: {shown}"
    );
}

#[test]
fn cli_and_agent_types_debug_redacted() {
    let bundle = kms_cli::bundle::Bundle {
        keys: vec![(
            kms_core::KeyName::new("a/b").unwrap(),
            SecretValue::from(CANARY),
        )],
    };
    clean("Bundle", &format!("{bundle:?}"));
    let token =
        kms_agent::token::Token::find(&["T".to_owned()], |_| Some(CANARY.to_owned())).unwrap();
    clean("Token", &format!("{token:?}"));
    let config = kms_agent::AgentConfig::from_toml_str(&format!(
        "[stores.v.vault]\naddress = \"https://h:8200\"\n[stores.v.vault.auth]\ntoken = \"{CANARY}\"\n"
    ))
    .unwrap();
    clean("AgentConfig", &format!("{config:?}"));
}

#[tokio::test]
async fn a_store_holding_a_canary_shows_it_nowhere() {
    let store: Arc<dyn KeyStore> = Arc::new(kms_core::MemoryStore::new());
    let key = kms_core::KeyName::new("k").unwrap();
    store.store(&key, SecretValue::from(CANARY)).await.unwrap();
    let got = store.get(&key).await.unwrap();
    clean("a read", &format!("{got:?} {store:?} {store}"));
    assert_eq!(got.value.expose_secret(), CANARY.as_bytes());
}
