//! One logical write: what makes a write that was retried, dropped or raced apply exactly
//! once, in the order its callers issued it.
//!
//! A write that times out may still have landed, and a write whose caller gave up may still be
//! on the wire. Two pieces keep such writes honest, each used by every backend that talks to a
//! server:
//!
//! - **Identity across attempts** ([`CallContext`](crate::CallContext)): the
//!   [`Retry`](crate::Retry) layer opens one context around all attempts of a call, with one
//!   random id and an attempt counter. A backend that keeps versions uses it so that a repeated
//!   attempt does not record the value twice (AWS Secrets Manager would otherwise make a second
//!   version and move `AWSPREVIOUS` onto the first copy of the new value, so a reader in a
//!   rotation grace period loses the old password).
//! - **Order across callers** ([`WriteOrder`](crate::WriteOrder)): a key's writes run to
//!   completion, one after another, on their own task, so a write its caller dropped ends
//!   before the next write to that key begins and cannot silently undo it.
//!
//! What each backend does with the call's id:
//!
//! | backend | on a repeated attempt |
//! |---|---|
//! | AWS Secrets Manager | sends [`CallContext::id`](crate::CallContext::id) as the `ClientRequestToken` of `PutSecretValue` / `CreateSecret`; AWS ignores a repeat with the same token and the same value ([PutSecretValue]) |
//! | Vault KV v2 | checks whether an earlier attempt already wrote this value |
//! | [`MemoryStore`](crate::MemoryStore) | a repeat of the last write of a key, with the same id and the same bytes, returns the version the first attempt made |
//!
//! [PutSecretValue]: https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html

pub(crate) mod context;
pub(crate) mod order;
