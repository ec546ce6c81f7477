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
