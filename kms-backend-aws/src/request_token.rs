//! The `ClientRequestToken` that makes one logical write one Secrets Manager version.

use kms_core::CallContext;

/// The token of the write under way.
///
/// Inside a [`CallContext`] (kms-core's retry layer opens one around all attempts of each
/// call), the context's id: every attempt of the logical write sends the same token, and AWS
/// answers a repeat of a `PutSecretValue` whose token and value it already has with the version
/// that token made, creating no second version ([PutSecretValue], `ClientRequestToken`).
/// Outside one, a fresh token for this call, shared by its Put, its Create and a re-Put after
/// a create race.
///
/// Only `store` and `remove` call this. The retry layer opens a context around reads too
/// (`get`, `list`, `health`), but a read never asks for a token, and its context closes when
/// the read returns: the next write through the layer opens its own, so no two writes share a
/// token unless a caller opened one scope around both.
///
/// Both are 32 lowercase hex digits; AWS requires 32 to 64 characters.
///
/// [PutSecretValue]: https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html
pub(crate) fn for_this_write() -> String {
    match CallContext::current() {
        Some(write) => write.id().to_owned(),
        None => CallContext::new().id().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_write_each_call_has_its_own_token() {
        let (a, b) = (for_this_write(), for_this_write());
        for t in [&a, &b] {
            assert_eq!(t.len(), 32, "{t}");
            assert!(t.bytes().all(|c| c.is_ascii_hexdigit()), "{t}");
        }
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn a_context_opened_around_a_read_does_not_reach_the_next_write() {
        let read = CallContext::new();
        let read_id = read.id().to_owned();
        read.scope(async {}).await;
        let write = for_this_write();
        assert_ne!(write, read_id);
    }

    #[tokio::test]
    async fn inside_a_write_every_call_sends_its_id() {
        let write = CallContext::new();
        let id = write.id().to_owned();
        let (a, b) = write
            .scope(async { (for_this_write(), for_this_write()) })
            .await;
        assert_eq!(a, id);
        assert_eq!(b, id);
    }
}
