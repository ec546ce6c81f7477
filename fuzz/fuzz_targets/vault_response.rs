//! The Vault backend's response decoders, driven end to end: a real `VaultStore` talks to a
//! local scripted server that answers with the input's responses (KV v1/v2 reads, lists,
//! metadata, writes, error bodies, AppRole logins and lookup-self answers).
//!
//! Input: line 1 the options (`kv1`, `approle`, `soft`, `field=NAME`, `prefix=P/` and one
//! operation: `get`, `version=N`, `list=PREFIX`, `put`, `cas=N`, `rm`, `health`); every
//! further line one response, `STATUS BODY`, in the order the store asks. `$SECRET` and
//! `$TOKEN` become canaries; the token (or AppRole secret id) is `$TOKEN` and a written
//! value is `$SECRET`.
//!
//! Properties: no error (message, `Debug`, sources) shows the token, the value written, or a
//! secret of a response (`value`, `password`, `client_token`, `secret_id`, `token`, `id`)
//! unless the response also put it where errors may quote it (Vault's `errors`);
//! a read's `Debug` never shows the value; listed names are under the prefix asked for.
#![no_main]

use std::time::Duration;

use kms_backend_vault::{KvVersion, RemoveMode, VaultAuth, VaultClient, VaultStore};
use kms_core::{KeyName, KeyPrefix, KeyStore, SecretValue};
use kms_fuzz::{
    Placement, Reply, SECRET, Scripted, TOKEN, assert_clean, assert_error_clean, header_and_lines,
    placement, runtime,
};
use libfuzzer_sys::fuzz_target;

const SECRET_KEYS: [&str; 6] = [
    "value",
    "password",
    "client_token",
    "secret_id",
    "token",
    "id",
];

fuzz_target!(|data: &[u8]| {
    let Some((header, lines)) = header_and_lines(data) else {
        return;
    };
    let replies: Vec<Reply> = lines.iter().take(16).map(|l| Reply::parse(l)).collect();
    let seen = |canary: &str| {
        replies
            .iter()
            .map(|r| placement(&r.body, canary, &SECRET_KEYS))
            .fold(Placement::default(), Placement::or)
    };
    let mut hide = Vec::new();
    for canary in [SECRET, TOKEN] {
        if seen(canary).must_hide() {
            hide.push(canary);
        }
    }
    let server = Scripted::get();
    server.script(replies.clone());

    let opt = |name: &str| {
        header
            .split(' ')
            .find_map(|w| w.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
    };
    let flag = |name: &str| header.split(' ').any(|w| w == name);
    let auth = if flag("approle") {
        VaultAuth::app_role("fuzz-role", TOKEN)
    } else {
        VaultAuth::token(TOKEN)
    };
    let client = VaultClient::builder(server.url())
        .auth(auth)
        .timeout(Duration::from_secs(2))
        .min_relogin_interval(Duration::ZERO)
        .build_lazy();
    let client = match client {
        Ok(c) => c,
        Err(e) => return assert_error_clean(&e, &hide),
    };
    assert_clean("Debug of the client", &format!("{client:?}"), TOKEN);
    let mut builder = VaultStore::builder(client).kv_version(if flag("kv1") {
        KvVersion::V1
    } else {
        KvVersion::V2
    });
    if flag("soft") {
        builder = builder.remove_mode(RemoveMode::SoftDelete);
    }
    if let Some(f) = opt("field") {
        builder = builder.field(f);
    }
    if let Some(p) = opt("prefix") {
        builder = builder.prefix(p);
    }
    let store = match builder.build() {
        Ok(s) => s,
        Err(e) => return assert_error_clean(&e, &hide),
    };
    assert_clean("Debug of the store", &format!("{store:?} {store}"), TOKEN);
    let key = KeyName::new("fuzz/key").unwrap();
    let value = SecretValue::from(SECRET);

    runtime().block_on(async {
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
