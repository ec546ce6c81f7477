//! Shared by the metric tests: reading the encoded text a Prometheus scrape gets, and
//! capturing log output.
#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex};

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

/// A `tracing_subscriber::fmt` writer that keeps what is logged, to check audit events.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
