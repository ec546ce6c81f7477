//! [`Lease`]: which of several watchers of a store polls it, decided by a JetStream
//! key-value entry with a time to live.
//!
//! The bucket [`LEASE_BUCKET`] holds one entry per store. A watcher that finds none creates
//! it (`create` succeeds for one caller only) and is the leader while it renews the entry
//! with `update` at the revision it last wrote (which fails once anyone else wrote). An
//! entry not renewed within the bucket's max age expires and another watcher takes over.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use kms_core::Result;

use crate::link::{FleetLink, unavailable};
use crate::subject::LEASE_BUCKET;

/// One watcher's claim on the lease of one store.
pub(crate) struct Lease {
    link: FleetLink,
    store: String,
    ttl: Duration,
    bucket: Option<kv::Store>,
    revision: Option<u64>,
}

impl Lease {
    pub(crate) fn new(link: FleetLink, store: String, ttl: Duration) -> Self {
        Self {
            link,
            store,
            ttl,
            bucket: None,
            revision: None,
        }
    }

    async fn bucket(&mut self) -> Result<&kv::Store> {
        if self.bucket.is_none() {
            let js = self.link.jetstream();
            // The bucket's stream is made here rather than by `create_key_value`, which first
            // asks for the account's info in a form servers before 2.10 do not answer with;
            // the settings are those of a key-value bucket keeping one entry per key.
            let stream = jetstream::stream::Config {
                name: format!("KV_{LEASE_BUCKET}"),
                subjects: vec![format!("$KV.{LEASE_BUCKET}.>")],
                max_messages_per_subject: 1,
                max_age: self.ttl,
                duplicate_window: self.ttl.min(Duration::from_secs(120)),
                num_replicas: self.link.stream_settings().replicas,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: jetstream::stream::DiscardPolicy::New,
                ..Default::default()
            };
            js.get_or_create_stream(stream)
                .await
                .map_err(|e| unavailable("lease bucket", e))?;
            let store = js
                .get_key_value(LEASE_BUCKET)
                .await
                .map_err(|e| unavailable("lease bucket", e))?;
            self.bucket = Some(store);
        }
        Ok(self.bucket.as_ref().expect("set above"))
    }

    /// Takes or renews the lease; whether this watcher holds it now.
    pub(crate) async fn hold(&mut self) -> bool {
        match self.try_hold().await {
            Ok(held) => held,
            Err(err) => {
                tracing::debug!(store = %self.store, error = %err, "fleet lease unreachable");
                self.revision = None;
                false
            }
        }
    }

    async fn try_hold(&mut self) -> Result<bool> {
        let origin = self.link.origin().to_owned();
        let key = self.store.clone();
        let revision = self.revision;
        let bucket = self.bucket().await?;
        let result = match revision {
            Some(revision) => bucket
                .update(&key, origin.into_bytes().into(), revision)
                .await
                .map_err(|e| e.to_string()),
            None => bucket
                .create(&key, origin.into_bytes().into())
                .await
                .map_err(|e| e.to_string()),
        };
        match result {
            Ok(revision) => {
                self.revision = Some(revision);
                Ok(true)
            }
            Err(_) => {
                // Someone else holds it (or took it over): not the leader this round.
                self.revision = None;
                Ok(false)
            }
        }
    }
}
