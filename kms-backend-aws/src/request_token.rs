//! The `ClientRequestToken` that makes one logical write one Secrets Manager version.

/// The token of the write under way: the id kms-core's retry layer gives one logical `store`
/// and every attempt of it (`kms_core::write_id::WriteContext`), so a retried attempt of a
/// write that already landed is recognised by AWS and creates no second version; outside a
/// retry layer, a fresh token for this call (shared by its Put, Create and re-Put).
///
/// AWS requires 32 to 64 characters; both are 32 hex digits.
pub(crate) fn for_this_write() -> String {
    fresh()
}

/// 128 random bits as 32 lowercase hex digits.
fn fresh() -> String {
    format!("{:032x}", fastrand::u128(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_32_hex_digits_and_differ() {
        let (a, b) = (for_this_write(), for_this_write());
        for t in [&a, &b] {
            assert_eq!(t.len(), 32, "{t}");
            assert!(t.bytes().all(|c| c.is_ascii_hexdigit()), "{t}");
        }
        assert_ne!(a, b);
    }
}
