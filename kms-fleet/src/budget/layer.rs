//! [`BudgetLayer`]: the [`Layer`] that wraps a store in [`Budgeted`].

use std::sync::Arc;

use kms_core::{KeyStore, Layer};

use crate::budget::bucket::RequestBudget;
use crate::budget::budgeted::Budgeted;

/// Makes every backend call of a stack draw from a [`RequestBudget`].
///
/// # Where it goes
///
/// Innermost, directly above the backend (below the timeout layer, which then bounds the
/// wait for a token too):
///
/// ```text
/// metrics → validate → cache → envelope → breaker → retry → backend monitor → timeout → budget → backend
/// ```
///
/// There every call that would reach the backend takes a token, whoever made it: a cache
/// miss, a refresh-ahead reload, a fleet revalidation, a watcher's version check, a retry
/// attempt, a prefetch. When the bucket is empty a call waits for a token up to the budget's
/// `max_wait`, and past it fails with [`ErrorKind::RateLimited`](kms_core::ErrorKind::RateLimited),
/// a kind the cache answers with its stale value when stale-if-error is on: readers get the
/// cached value, or wait, never a storm of errors.
#[derive(Clone, Debug)]
pub struct BudgetLayer {
    budget: RequestBudget,
}

impl BudgetLayer {
    /// A layer drawing from `budget` (clones share its tokens).
    pub fn new(budget: RequestBudget) -> Self {
        Self { budget }
    }

    /// The budget.
    pub fn budget(&self) -> &RequestBudget {
        &self.budget
    }
}

impl Layer for BudgetLayer {
    fn layer(&self, inner: Arc<dyn KeyStore>) -> Arc<dyn KeyStore> {
        Arc::new(Budgeted::new(inner, self.budget.clone()))
    }
}
