//! Layers: decorators that wrap any [`KeyStore`](crate::KeyStore), and the one order they go
//! in.
//!
//! A decorator is a `KeyStore` that wraps another one. Each comes with a *layer*: a small value
//! holding its configuration (and shared state, such as a registry or a breaker's window) that
//! wraps any `Arc<dyn KeyStore>` ([`Layer`](crate::Layer), as tower's `Layer` and OpenDAL's
//! layers). [`StoreBuilder`](crate::StoreBuilder) stacks them, **outermost first**: the first
//! layer added sees each call first. The decorators are also usable directly, generic over the
//! inner store.
//!
//! # The stack, top to bottom
//!
//! This is the one place the order is written; the facade (`kms::open`), the metrics crate and
//! the READMEs link here.
//!
//! ```text
//! metrics → validate → cache → envelope → monotonic → failover ⇉ [breaker → retry → backend monitor → timeout → backend] per target
//! ```
//!
//! | position | layer | why it sits there |
//! |---|---|---|
//! | 1 | metrics (`kms_metrics::MetricsLayer`) | measures what the service experiences, cache hits and instant refusals included |
//! | 2 | [`ValidateLayer`](crate::ValidateLayer) | rejects an oversized value before anything below spends work, memory or a network call on it |
//! | 3 | cache (`kms_cache::CacheLayer`) | answers hot keys without touching anything below, and serves stale values while the layers below report the backend down |
//! | 4 | envelope (`envelope::EnvelopeLayer`) | below the cache, so hits hold plaintext and cost no decrypt; encrypts before a value leaves the process |
//! | 4a | [`MonotonicLayer`](crate::MonotonicLayer) | below the cache, so a reload from a node or replica that is behind is refused before the cache keeps it; above failover, so it sees whichever target answered |
//! | 4b | [`FailoverLayer`](crate::FailoverLayer) | above each target's own breaker, retry and timeout, so a target's health is its own (its breaker opening switches reads at once) and a read that fails on one target after its retries is tried on the next; writes go to the primary's stack only |
//! | 5 | [`CircuitBreakerLayer`](crate::CircuitBreakerLayer) | above retry, so one logical call counts once however many attempts it took, and while open no attempt or backoff sleep happens |
//! | 6 | [`RetryLayer`](crate::RetryLayer) | repeats transient failures; opens the [`CallContext`](crate::CallContext) every layer and backend below reads (attempt number, write id) |
//! | 7 | backend monitor (`kms_metrics::BackendMonitor`) | below retry, so it sees each attempt that reached the backend (and counts retries from the call context); probes the backend itself |
//! | 8 | [`TimeoutLayer`](crate::TimeoutLayer) | innermost, so it bounds each attempt: a hung attempt becomes a retryable timeout instead of hanging the call |
//!
//! Every position is optional; the ones present keep this order. With failover, positions
//! 5 to 8 are repeated in each target's stack (the primary's is the store the failover layer
//! wraps; each replica brings its own), and 1 to 4a sit once above the failover store.
//! [`StoreBuilder::resilience`](crate::StoreBuilder::resilience) adds 5, 6 and 8.
//!
//! # Forwarding
//!
//! Every decorator's `KeyStore` impl is checked by `#[deny(clippy::missing_trait_methods)]`:
//! each trait method, default ones included (`get_now`, the cache-hit fast path;
//! `get_version`; `store_if_version`), is forwarded or declined on purpose, so a fast path
//! is never lost silently.

pub(crate) mod breaker;
pub(crate) mod builder;
mod deadline;
pub(crate) mod failover;
#[cfg(feature = "testing")]
pub(crate) mod fault;
pub(crate) mod floors;
pub(crate) mod layer;
pub(crate) mod monotonic;
pub(crate) mod retry;
pub(crate) mod timeout;
pub(crate) mod validate;
