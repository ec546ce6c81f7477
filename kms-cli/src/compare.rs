//! Comparing secret values without a timing side channel.

use kms_core::SecretValue;
use subtle::ConstantTimeEq;

/// Whether two values are byte-for-byte equal, in time that depends only on their lengths
/// (`subtle::ConstantTimeEq` for slices): a `diff` or `migrate` run next to an attacker does
/// not reveal how long a common prefix two secrets share.
pub fn values_equal(a: &SecretValue, b: &SecretValue) -> bool {
    bool::from(a.expose_secret().ct_eq(b.expose_secret()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_and_different() {
        let a = SecretValue::from("hunter2");
        assert!(values_equal(&a, &SecretValue::from("hunter2")));
        assert!(!values_equal(&a, &SecretValue::from("hunter3")));
        assert!(!values_equal(&a, &SecretValue::from("hunter")));
        assert!(!values_equal(&a, &SecretValue::from("hunter22")));
    }
}
