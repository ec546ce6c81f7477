//! The request budget: [`bucket`] (the token bucket), [`budgeted`] (the decorator),
//! [`layer`] (its factory).

pub(crate) mod bucket;
pub(crate) mod budgeted;
pub(crate) mod layer;
