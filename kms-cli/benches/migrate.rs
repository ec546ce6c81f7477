//! `migrate` throughput: N keys (default 10,000; `KMS_BENCH_KEYS` or `--keys N`) from memory to
//! OpenBao (`KMS_TEST_VAULT_ADDR`) and to moto (`KMS_TEST_AWS_ENDPOINT`), at concurrency 1 and
//! 16, each into a fresh prefix, reported as keys/s. One timed run per case (a migrate of
//! thousands of keys is its own average); the keys are removed afterwards, untimed.
//!
//! `cargo bench -p kms-cli --bench migrate -- --keys 2000`

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kms_cli::migrate::{MigrateOptions, migrate};
use kms_cli::progress::NoProgress;
use kms_cli::stop::Stop;
use kms_core::{KeyName, KeyStore, KeyStoreExt, MemoryStore};

/// Builds a destination URI for a prefix.
type UriFor = Box<dyn Fn(&str) -> String>;

fn arg_keys() -> usize {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--keys") {
        return args[i + 1].parse().expect("--keys N");
    }
    std::env::var("KMS_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("kmscli-bench-{tag}-{}-{nanos:x}", std::process::id())
}

async fn source(n: usize) -> MemoryStore {
    let store = MemoryStore::new();
    for i in 0..n {
        store
            .put(
                &format!("bench/k{i:05}"),
                format!("value-{i:05}-{}", "x".repeat(24)).as_str(),
            )
            .await
            .unwrap();
    }
    store
}

async fn clean(store: &Arc<dyn KeyStore>, keys: &[KeyName]) {
    futures::stream::iter(keys)
        .map(|k| async move {
            let _ = store.remove(k).await;
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` / nextest probing: nothing to list.
    }
    let n = arg_keys();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let from = source(n).await;
        let keys: Vec<KeyName> = (0..n)
            .map(|i| KeyName::new(format!("bench/k{i:05}")).unwrap())
            .collect();
        let vault_addr = std::env::var("KMS_TEST_VAULT_ADDR")
            .expect("KMS_TEST_VAULT_ADDR (source /work/tools/peers.env)");
        let aws_endpoint = std::env::var("KMS_TEST_AWS_ENDPOINT").expect("KMS_TEST_AWS_ENDPOINT");
        // moto takes any credentials; the AWS SDK reads them from the environment
        // (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), which the caller sets.
        let targets: [(&str, UriFor); 2] = [
            (
                "memory -> OpenBao",
                Box::new(move |p: &str| {
                    format!("vault+{vault_addr}/secret/{p}?auth.token=env:KMS_TEST_VAULT_TOKEN")
                }),
            ),
            (
                "memory -> moto",
                Box::new(move |p: &str| {
                    format!("aws-sm://us-east-1/{p}?endpoint_url={aws_endpoint}&deletion=force")
                }),
            ),
        ];
        println!("migrate of {n} keys (values 36 bytes)");
        println!(
            "{:<18} {:>11} {:>10} {:>10}",
            "target", "concurrency", "seconds", "keys/s"
        );
        for (label, uri) in &targets {
            let mut rates = Vec::new();
            for concurrency in [1usize, 16] {
                let to = kms::open(&uri(&unique(&format!("c{concurrency}"))))
                    .await
                    .expect("open the destination");
                let options = MigrateOptions {
                    concurrency,
                    ..MigrateOptions::default()
                };
                let start = Instant::now();
                let summary = migrate(&from, to.as_ref(), &options, &NoProgress, &Stop::new())
                    .await
                    .unwrap();
                let elapsed = start.elapsed();
                let counts = summary.counts();
                let rate = counts.copied as f64 / elapsed.as_secs_f64();
                if counts.failed > 0 {
                    let reasons: Vec<String> = summary
                        .keys
                        .iter()
                        .filter_map(|k| match &k.outcome {
                            kms_cli::migrate::Outcome::Failed(e) => Some(e.to_string()),
                            _ => None,
                        })
                        .take(3)
                        .collect();
                    println!(
                        "  {} of {n} keys failed (keys/s counts copied keys only): {reasons:?}",
                        counts.failed
                    );
                }
                println!(
                    "{label:<18} {concurrency:>11} {:>10.2} {rate:>10.1}",
                    elapsed.as_secs_f64()
                );
                rates.push(rate);
                clean(&to, &keys).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            println!("{label:<18} speed-up 16 vs 1: {:.1}x", rates[1] / rates[0]);
        }
    });
}
