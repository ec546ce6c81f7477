//! The latency buckets of `<prefix>_key_operation_duration_seconds`.

/// Upper bounds, in seconds, chosen to separate the layers a call can be answered by.
pub const DURATION_BUCKETS: [f64; 16] = [
    0.000_05, // 50 µs: a cache hit (in-process, no I/O)
    0.000_1,  // 100 µs: a hit under contention, or the in-memory store
    0.000_25, // 250 µs: the OS keyring (kernel keyutils)
    0.000_5,  // 500 µs: a hit with a slow clock / busy runtime
    0.001,    // 1 ms: a local sidecar (Vault agent, Secrets Manager agent) on loopback
    0.002_5,  // 2.5 ms: Secret Service over D-Bus; Vault in the same host or pod network
    0.005,    // 5 ms: Vault or AWS in the same availability zone, warm connection
    0.01,     // 10 ms: a typical in-region AWS Secrets Manager / KMS call
    0.025,    // 25 ms: a cross-AZ call or a TLS handshake on a cold connection
    0.05,     // 50 ms: a slow backend; p95 alerts start looking here
    0.1,      // 100 ms: the retry layer's first backoff (100 ms base)
    0.25,     // 250 ms: one retry taken
    0.5,      // 500 ms: several retries, or a throttled backend
    1.0,      // 1 s: the edge of acceptable for a request path
    2.5,      // 2.5 s: retries near their budget
    10.0,     // 10 s: the default per-operation timeout (5 s) plus retries; beyond is +Inf
];

/// Upper bounds, in seconds, of `<prefix>_key_cache_stale_serve_age_seconds`: how long past
/// its TTL a value served stale was, from a stale-while-revalidate blip to the stale window's
/// end (stale-if-error's default is 15 minutes).
pub const STALENESS_BUCKETS: [f64; 12] = [
    0.1,    // a reload that missed the 100 ms stale-while-revalidate wait
    1.0,    // a short blip
    5.0,    // a retry chain or a breaker's open delay
    15.0,   // the health probe's default interval
    30.0,   //
    60.0,   // the backend-down alert's `for:`
    120.0,  //
    300.0,  // the serving-stale alert's default bound
    600.0,  //
    900.0,  // stale-if-error's window in the example service
    1800.0, //
    3600.0, // an hour; beyond is +Inf
];
