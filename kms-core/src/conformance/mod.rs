//! The conformance suite: the behaviour every [`KeyStore`](crate::KeyStore) in this workspace must show.
//!
//! Available with the `conformance` feature. Every backend and every decorator runs it; cases
//! that need a capability the store does not declare check instead that the store refuses
//! cleanly (e.g. `list` on a store that cannot list returns
//! [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported)).
//!
//! Each case works under a fresh, unique namespace (`conformance/<case>-<pid>-<time>-<n>/…`)
//! and removes what it wrote, so the suite can run in parallel against a shared server.
//!
//! # Use
//!
//! The [`conformance_tests!`](crate::conformance_tests) macro expands to one `#[tokio::test]`
//! per case (so a failure names its case); the crate using it needs `tokio` with the `macros`
//! and `rt-multi-thread` features as a dev-dependency:
//!
//! ```text
//! mod memory {
//!     kms_core::conformance_tests!(kms_core::MemoryStore::new());
//! }
//! mod over_a_server {
//!     // any expression that evaluates to a KeyStore, `.await` allowed
//!     kms_core::conformance_tests!(my_backend_for_tests().await);
//! }
//! ```

//!
//! # Cancellation
//!
//! The cancellation harness: every operation, dropped at every await point, leaves nothing a
//! later call can tell apart from "that operation failed".
//! The harness polls an operation `k` times (each
//! poll after the operation woke its task, so every poll is real progress) and drops it, for
//! every `k` from 0 until the operation completes, and after each drop checks the invariants:
//!
//! - a following `get` sees what the backend holds: the old value or the new one for a
//!   dropped write (it may or may not have landed), never anything else;
//! - in-flight bookkeeping returns to zero (when the layer exposes a count of it);
//! - nothing is wedged: a complete write afterwards reads back, and `list` shows the key.
//!
//! [`cancellation_safety`] is a conformance case (run by
//! [`run_all`] and [`conformance_tests!`](crate::conformance_tests))
//! over any store, backends included. [`cancellation_safety_over`] runs the same sequence
//! over a decorator whose backend it controls, with await points before and after each write
//! lands and the backend's own answer to compare with, which is what catches a cache still
//! serving a value older than a write that landed.

mod cancellation;
mod cases;
mod crypto_cases;
mod rotation_cases;
mod support;

pub use cancellation::{MAX_POLLS, cancellation_safety, cancellation_safety_over, poll_then_drop};
pub use cases::*;
pub use crypto_cases::crypto_provider_conformance;
pub use rotation_cases::*;
pub use support::{TestStore, test_store, unique_name};

/// The case list, written once: calls `$crate::$then!` with optional leading tokens, then
/// every case's name in the order they run. [`CASES`], [`run_all`] and
/// [`conformance_tests!`](crate::conformance_tests) are all generated from it.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($then:ident $(($($lead:tt)*))?) => {
        $crate::$then! { $(($($lead)*))?
            store_then_get_returns_same_bytes,
            binary_values_round_trip,
            overwrite_replaces_value,
            get_missing_is_not_found,
            remove_then_get_is_not_found,
            remove_missing_is_not_found,
            list_with_and_without_prefix,
            concurrent_writers_and_readers_lose_nothing,
            invalid_names_are_rejected_before_the_store,
            oversized_values_are_rejected,
            versions_are_kept_when_declared,
            empty_value_is_rejected,
            names_with_every_allowed_character_round_trip,
            retried_write_is_one_version,
            check_and_set_writes_only_on_the_expected_version,
            rotation_with_a_stale_version_is_a_conflict_and_changes_nothing,
            concurrent_rotations_give_one_new_version_and_one_conflict,
            overlap_reads_the_current_and_the_previous_value,
            health_and_labels,
            cancellation_safety
        }
    };
}

/// Defines [`CASES`] and [`run_all`] from the case list.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_define_list {
    ($($case:ident),* $(,)?) => {
        /// Names of every case, in the order [`run_all`] runs them.
        pub const CASES: &[&str] = &[$(stringify!($case)),*];

        /// Runs every case in order, panicking on the first failure.
        pub async fn run_all(store: &TestStore) {
            $($case(store).await;)*
        }
    };
}

/// One `#[tokio::test]` per case over a store made by `$make`.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_test_fns {
    (($make:expr) $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = $crate::conformance::test_store($make);
                $crate::conformance::$case(&store).await;
            }
        )*
    };
}

crate::__conformance_cases!(__conformance_define_list);

/// Expands to one `#[tokio::test]` per conformance case, each over a fresh store made by
/// evaluating `$make` (any expression of a type that implements `KeyStore`; `.await` allowed).
///
/// The calling crate needs `tokio` (features `macros`, `rt-multi-thread`) as a dev-dependency.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::__conformance_cases!(__conformance_test_fns($make));
    };
}
