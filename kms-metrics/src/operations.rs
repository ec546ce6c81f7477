//! The operations that carry the `operation` label, and the array index of each in the
//! pre-resolved series (a call indexes an array, it never looks a label set up).

use kms_core::{CryptoOperation, Operation};

/// The key store operations with their own series (health has its own gauge), in index order.
pub(crate) const OPERATIONS: [Operation; 4] = [
    Operation::Get,
    Operation::Store,
    Operation::Remove,
    Operation::List,
];

/// The index of a key store operation in [`OPERATIONS`] and in every array built from it.
#[inline]
pub(crate) fn op_index(op: Operation) -> usize {
    match op {
        Operation::Get => 0,
        Operation::Store => 1,
        Operation::Remove => 2,
        _ => 3,
    }
}

/// The index of a provider operation in [`CryptoOperation::ALL`] and in every array built
/// from it.
#[inline]
pub(crate) fn crypto_index(op: CryptoOperation) -> usize {
    match op {
        CryptoOperation::Encrypt => 0,
        CryptoOperation::Decrypt => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_follow_the_arrays() {
        for (i, op) in OPERATIONS.into_iter().enumerate() {
            assert_eq!(op_index(op), i, "{op:?}");
        }
        for (i, op) in CryptoOperation::ALL.into_iter().enumerate() {
            assert_eq!(crypto_index(op), i, "{op:?}");
        }
    }
}
