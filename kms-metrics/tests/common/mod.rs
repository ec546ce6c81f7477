//! Reading the encoded text a Prometheus scrape gets, shared by the metric tests.
#![allow(dead_code)]

use kms_metrics::prometheus_client::encoding::text::encode;
use kms_metrics::prometheus_client::registry::Registry;

/// The OpenMetrics text of `registry`.
pub fn scrape(registry: &Registry) -> String {
    let mut text = String::new();
    encode(&mut text, registry).unwrap();
    text
}

/// The value of the one sample line starting with `series`; panics if there is none.
pub fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}
