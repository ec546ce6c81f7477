//! The AWS backend's answer handling, driven end to end: a real `SecretsManagerStore` (SDK
//! retries off) talks to a local scripted server that answers with the input's responses,
//! so the SDK's JSON decoding, the error mapping (`error_map`: code and wording → kind) and
//! the store's own reading of `GetSecretValue`, `ListSecrets`, `PutSecretValue`,
//! `CreateSecret`, `DeleteSecret` and `DescribeSecret` answers all see them.
//!
//! Input: line 1 one operation (`get`, `version=ID`, `stage=LABEL`, `list=PREFIX`, `put`,
//! `cas=ID`, `rm`, `health`); every further line one response `STATUS [Name:value ]BODY`
//! (e.g. `400 x-amzn-ErrorType:ResourceNotFoundException {"Message":"…"}`). `$SECRET` and
//! `$TOKEN` become canaries; the secret access key and session token are `$TOKEN`, a written
//! value is `$SECRET`.
//!
//! Properties: no error shows a credential, the value written, or a secret of an answer
//! (`SecretString`, `SecretBinary`, `Plaintext`) unless the answer also put it where errors
//! may quote it (AWS's `Message`); a read's `Debug` never shows the value.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use kms_backend_aws::{AwsConnection, SecretsManagerStore, VersionStage};
use kms_core::{KeyName, KeyPrefix, KeyStore, SecretValue};
use kms_fuzz::{
    Placement, Reply, SECRET, Scripted, TOKEN, assert_clean, assert_error_clean, header_and_lines,
    placement, runtime,
};
use libfuzzer_sys::fuzz_target;
use tokio::sync::OnceCell;

const SECRET_KEYS: [&str; 3] = ["SecretString", "SecretBinary", "Plaintext"];

async fn store(endpoint: String) -> Arc<SecretsManagerStore> {
    static STORE: OnceCell<Arc<SecretsManagerStore>> = OnceCell::const_new();
    STORE
        .get_or_init(|| async {
            let config = AwsConnection::new()
                .region("us-east-1")
                .endpoint_url(endpoint)
                .static_credentials("AKIDFUZZ", TOKEN, Some(TOKEN.into()))
                .sdk_retries(false)
                .operation_timeout(Duration::from_secs(2))
                .load()
                .await
                .expect("an SDK config");
            Arc::new(
                SecretsManagerStore::builder(&config)
                    .build()
                    .expect("a store"),
            )
        })
        .await
        .clone()
}

fuzz_target!(|data: &[u8]| {
    let Some((header, lines)) = header_and_lines(data) else {
        return;
    };
    let replies: Vec<Reply> = lines.iter().take(16).map(|l| Reply::parse(l)).collect();
    let mut hide = Vec::new();
    for canary in [SECRET, TOKEN] {
        let seen = replies
            .iter()
            .map(|r| {
                let in_headers = r.headers.iter().any(|(_, v)| v.contains(canary));
                placement(&r.body, canary, &SECRET_KEYS).or(Placement {
                    secret: false,
                    elsewhere: in_headers,
                })
            })
            .fold(Placement::default(), Placement::or);
        if seen.must_hide() {
            hide.push(canary);
        }
    }
    let opt = |name: &str| {
        header
            .split(' ')
            .find_map(|w| w.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
    };
    let flag = |name: &str| header.split(' ').any(|w| w == name);
    let key = KeyName::new("fuzz/key").unwrap();
    let value = SecretValue::from(SECRET);

    // Started outside `block_on`: starting it blocks on the runtime itself.
    let server = Scripted::get();
    runtime().block_on(async {
        let store = store(server.url()).await;
        assert_clean("Debug of the store", &format!("{store:?} {store}"), TOKEN);
        server.script(replies.clone());
        let read = |r: kms_core::Result<kms_core::StoredSecret>| match r {
            Ok(s) => assert_clean("Debug of a read", &format!("{s:?}"), SECRET),
            Err(e) => assert_error_clean(&e, &hide),
        };
        let done = |r: kms_core::Result<()>| {
            if let Err(e) = r {
                assert_error_clean(&e, &hide);
            }
        };
        if flag("get") {
            read(store.get(&key).await);
        } else if let Some(v) = opt("version") {
            read(store.get_version(&key, v).await);
        } else if let Some(s) = opt("stage") {
            read(
                store
                    .get_stage(&key, &VersionStage::Custom(s.to_owned()))
                    .await,
            );
        } else if let Some(p) = opt("list") {
            if let Ok(prefix) = KeyPrefix::new(p) {
                match store.list(&prefix).await {
                    Ok(names) => assert!(names.iter().all(|n| n.starts_with(&prefix)), "{names:?}"),
                    Err(e) => assert_error_clean(&e, &hide),
                }
            }
        } else if flag("put") {
            done(store.store(&key, value).await.map(drop));
        } else if let Some(v) = opt("cas") {
            done(store.store_if_version(&key, value, Some(v)).await.map(drop));
        } else if flag("rm") {
            done(store.remove(&key).await);
        } else if flag("health") {
            done(store.health().await);
        }
    });
});
