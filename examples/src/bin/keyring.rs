//! The OS keyring through the stack: store, read, list and remove a few keys.
//!
//! Uses the platform default keyring (the Secret Service on Linux when available, else the
//! kernel keyring; pass `keyutils` to force the kernel keyring). Kernel keys go to the session
//! keyring (`KeyutilsScope::Session`: gone when the session ends; `Persistent` would let them
//! outlive logout and be readable from every session of the uid). Every keyring call is
//! bounded by the store's timeout. Run it with
//! `cargo run -p kms-examples --bin keyring [keyutils]`; on a headless Linux box, inside
//! `keyctl session - cargo run -p kms-examples --bin keyring keyutils`.

use std::time::Duration;

use kms_backend_keyring::{KeyringBackend, KeyringStore, KeyutilsScope};
use kms_core::{
    KeyName, KeyPrefix, KeyStore, KeyStoreExt, RetryLayer, StoreBuilder, TimeoutLayer,
    ValidateLayer,
};

#[tokio::main]
async fn main() -> Result<(), kms_core::Error> {
    let backend = match std::env::args().nth(1).as_deref() {
        Some("keyutils") => KeyringBackend::KeyUtils,
        _ => KeyringBackend::PlatformDefault,
    };
    let keyring = KeyringStore::builder("kms-example")
        .backend(backend)
        .keyutils_scope(KeyutilsScope::Session)
        .timeout(Duration::from_secs(5))
        .build()
        .await?;
    let store = StoreBuilder::new(keyring)
        .layer(ValidateLayer::new())
        .layer(RetryLayer::new())
        .layer(TimeoutLayer::new())
        .build();
    println!("stack: {store}  (backend label: {})", store.backend());

    for (name, value) in [
        ("app/db/password", "correct horse"),
        ("app/api-key", "pk_0123"),
    ] {
        store.put(name, value).await?;
        println!("stored  {name}");
    }
    let value = store.get_value("app/db/password").await?;
    println!(
        "read    app/db/password ({} bytes), debug: {value:?}",
        value.len()
    );

    let mut names = store.list(&KeyPrefix::new("app/")?).await?;
    names.sort();
    let names: Vec<&str> = names.iter().map(KeyName::as_str).collect();
    println!("list    app/ -> {names:?}");

    for name in names {
        store.delete(name).await?;
    }
    println!(
        "removed; list is now {:?}",
        store.list(&KeyPrefix::all()).await?
    );
    Ok(())
}
