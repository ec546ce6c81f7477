//! KV v2 on Vault/OpenBao, then the same store wrapped in envelope encryption with Transit.
//!
//! Reads `VAULT_ADDR`, `VAULT_TOKEN`, `VAULT_NAMESPACE`, `VAULT_CACERT` (or their `BAO_*`
//! spellings) as the `vault` CLI does; without them, the dev server `scripts/peers/openbao.sh`
//! starts (`http://127.0.0.1:8200`, token `root`).

use std::sync::Arc;

use kms_backend_vault::{VaultClientBuilder, VaultStore, VaultTransitProvider};
use kms_core::envelope::EnvelopeLayer;
use kms_core::{EncryptionContext, KeyName, KeyPrefix, KeyStore, StoreBuilder};

#[tokio::main]
async fn main() -> Result<(), kms_core::Error> {
    let client = VaultClientBuilder::from_env_with(|name| {
        std::env::var(name).ok().or_else(|| match name {
            "BAO_ADDR" => Some("http://127.0.0.1:8200".into()),
            "BAO_TOKEN" => Some("root".into()),
            _ => None,
        })
    })
    .build()
    .await?;
    println!("client: {client:?}");
    let store = VaultStore::builder(client.clone())
        .prefix("kms-example")
        .build()?;
    store.health().await?;

    let key = KeyName::new(format!("db/password-{}", std::process::id()))?;
    let v1 = store.store(&key, "first".into()).await?;
    let v2 = store.store(&key, "second".into()).await?;
    println!(
        "{store}: wrote {key} versions {:?} and {:?}",
        v1.version, v2.version
    );
    let old = store
        .get_version(&key, v1.version.as_deref().unwrap_or("1"))
        .await?;
    println!("version 1 is {} bytes", old.value.len());
    match store.store_cas(&key, "stale".into(), 1).await {
        Err(e) => println!(
            "check-and-set against version 1: {} ({e})",
            e.kind().as_str()
        ),
        Ok(_) => println!("unexpected: stale check-and-set succeeded"),
    }
    let listed = store.list(&KeyPrefix::new("db/")?).await?;
    println!("listed under db/: {}", listed.len());
    store.remove(&key).await?;
    match store.get(&key).await {
        Err(e) => println!("after remove: {}", e.kind().as_str()),
        Ok(_) => println!("unexpected: still readable"),
    }

    let transit = VaultTransitProvider::new(client, "kms-example")?;
    transit.ensure_key().await?;
    let sealed = StoreBuilder::new(store)
        .layer(
            EnvelopeLayer::new(Arc::new(transit))
                .context(EncryptionContext::new().with("service", "example")),
        )
        .build();
    sealed.store(&key, "enveloped secret".into()).await?;
    let back = sealed.get(&key).await?;
    println!(
        "{sealed}: round trip ok = {}",
        back.value.expose_secret() == b"enveloped secret"
    );
    sealed.remove(&key).await?;
    Ok(())
}
