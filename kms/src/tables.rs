//! The names of a store's layer tables. A leaf: the URI parser sorts query keys by them
//! (a layer option is written with its layer, a backend option bare), and they are the layer
//! fields of [`StoreConfig`](crate::StoreConfig).

/// The layers, as their table names.
pub(crate) const LAYERS: [&str; 7] = [
    "validate", "cache", "envelope", "breaker", "retry", "timeout", "metrics",
];
