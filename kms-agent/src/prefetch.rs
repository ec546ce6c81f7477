//! The prefetch: `[capabilities.secrets_manager.prefetch] secrets`, read into the stores'
//! caches at start, after a random delay of up to `max_jitter_seconds` (so a fleet started
//! together does not call the backend in step), at most `cache_size × cache_buffer_ratio` of
//! them, eight at a time. Readiness is false until it has finished, whatever its outcome (a
//! secret that cannot be read is counted and logged by id, never by value). After a reload it
//! runs again, without touching readiness.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use crate::live::{Live, PrefetchStatus};
use crate::secrets_manager;

/// Reads at once, at most.
const CONCURRENCY: usize = 8;

/// Starts the prefetch of the current snapshot (`initial`: the one at start, which gates
/// readiness). Returns `None` when there is nothing to prefetch.
pub fn spawn(live: Arc<Live>, initial: bool) -> Option<tokio::task::JoinHandle<()>> {
    let snap = live.snapshot();
    let prefetch = &snap.secrets_manager.prefetch;
    if prefetch.secrets.is_empty() {
        return None;
    }
    if initial {
        live.set_prefetch(PrefetchStatus::Pending);
    }
    Some(tokio::spawn(async move {
        let snap = live.snapshot();
        let max = snap.secrets_manager.prefetch.max_jitter;
        if !max.is_zero() {
            let jitter = Duration::from_secs_f64(max.as_secs_f64() * fastrand::f64());
            tokio::time::sleep(jitter).await;
        }
        let limit = snap.secrets_manager.prefetch_limit();
        let ids: Vec<String> = snap
            .secrets_manager
            .prefetch
            .secrets
            .iter()
            .take(limit)
            .cloned()
            .collect();
        let results: Vec<bool> = futures::stream::iter(ids)
            .map(|id| {
                let snap = snap.clone();
                async move {
                    match secrets_manager::warm(&snap, &id).await {
                        Ok(()) => true,
                        Err(e) => {
                            tracing::warn!(secret_id = %id, error = %e, "prefetch: cannot read the secret");
                            false
                        }
                    }
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let fetched = results.iter().filter(|ok| **ok).count();
        let failed = results.len() - fetched;
        for ok in &results {
            live.metrics().prefetched(*ok);
        }
        if initial {
            live.set_prefetch(PrefetchStatus::Done { fetched, failed });
        }
        tracing::info!(fetched, failed, "prefetch finished");
    }))
}
