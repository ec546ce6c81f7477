//! A fixed number of `get`s on one store variant, for instruction counts under callgrind
//! (`valgrind --tool=callgrind <bench binary> <variant> <n>`; subtract a run with a smaller `n`
//! and divide by the difference; `scripts/get-ir` does it for every variant). Variants (see
//! `common/mod.rs`): `memory/bare`, `memory/instrumented`, `cache/bare`, `cache/instrumented`,
//! `ready/bare`, `ready/instrumented`. Not a criterion bench: wall-clock numbers come from
//! `instrumented`.

mod common;

use std::hint::black_box;

use kms_metrics::KmsMetrics;
use kms_metrics::prometheus_client::registry::Registry;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let variant = args.next().unwrap_or_else(|| "cache/instrumented".into());
    let n: usize = args.next().map_or(100_000, |s| s.parse().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let metrics = KmsMetrics::register(&mut Registry::default());
    let (_, store) = common::stores(&metrics)
        .into_iter()
        .find(|(name, _)| *name == variant)
        .unwrap_or_else(|| panic!("unknown variant {variant}"));
    let keys = common::keys();
    rt.block_on(async {
        common::fill(&*store, &keys).await;
        for i in 0..n {
            black_box(store.get(&keys[i % common::KEYS]).await.unwrap());
        }
    });
}
