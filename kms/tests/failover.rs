//! `failover.*` and `vault.addresses`: each option set and its effect observed on fake Vault
//! servers (a primary store and a replica store of one configuration), and their bad values
//! refused with a `Configuration` error naming the key.

mod common;

use std::time::{Duration, Instant};

use common::fake_vault::FakeVault;
use common::http::Faults;
use kms::{Config, ErrorKind, KeyStoreExt, MetricsRegistry, Opener, Stack};
use serde_json::json;

/// A configuration with store `p` on `primary` (its `failover` table given by
/// `failover`) and store `r` on `replica`.
fn config(primary: &FakeVault, replica: &FakeVault, failover: &str) -> Config {
    let text = format!(
        "[stores.p]\nuri = \"vault+http://{}/secret?auth.token=t\"\n[stores.p.metrics]\n\
         [stores.p.failover]\n{failover}\n\
         [stores.r]\nuri = \"vault+http://{}/secret?auth.token=t\"\n",
        primary.authority(),
        replica.authority()
    );
    Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

async fn open(config: &Config) -> Stack {
    Opener::new()
        .metrics_registry(MetricsRegistry::new())
        .open_named(config, "p")
        .await
        .unwrap()
}

async fn pair() -> (FakeVault, FakeVault) {
    let (p, r) = (FakeVault::start().await, FakeVault::start().await);
    p.seed("secret/a", json!({ "value": "from-p" }));
    r.seed("secret/a", json!({ "value": "from-r" }));
    (p, r)
}

/// Every request to `fv` fails with 503 (reads, health, mounts).
fn down(fv: &FakeVault) {
    fv.set_faults(Faults {
        status: Some(503),
        ..Faults::default()
    });
}

async fn read(stack: &Stack) -> kms::Result<String> {
    let v = stack.store().get_value("a").await?;
    Ok(v.expose_str().unwrap().to_owned())
}

#[tokio::test]
async fn reads_fail_over_to_the_replicas_after_fail_after_failures_and_writes_stay_on_the_primary()
{
    observes!(
        "failover.replicas",
        "failover.fail_after",
        "failover.enabled"
    );
    let (p, r) = pair().await;
    let stack = open(&config(&p, &r, "replicas = [\"r\"]\nfail_after = 2")).await;
    let off = open(&config(&p, &r, "enabled = false\nreplicas = [\"r\"]")).await;
    let handle = stack.failover().expect("a failover handle").clone();
    assert_eq!(handle.targets(), ["p", "r"]);
    assert_eq!(read(&stack).await.unwrap(), "from-p");

    down(&p);
    // Every read answers, from the replica; the second failure in a row switches.
    assert!(read(&stack).await.unwrap().contains("from-r"));
    assert_eq!(handle.active(), "p", "one failure is not fail_after = 2");
    assert!(read(&stack).await.unwrap().contains("from-r"));
    assert_eq!(handle.active(), "r");
    let metrics = stack.metrics_text().unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("kms_failover_active{") && l.contains(r#"target="r"} 1"#)),
        "{metrics}"
    );
    assert!(metrics.contains("kms_failovers_total{"), "{metrics}");

    // Writes go to the primary only, loudly.
    let err = stack.store().put("a", "new").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("writes go to the primary 'p' only"),
        "{err}"
    );
    assert_eq!(r.data("secret/a"), Some(json!({ "value": "from-r" })));

    // `enabled = false`: no failover layer at all.
    assert!(off.failover().is_none());
    assert!(!off.to_string().contains("Failover"), "{off}");
    assert!(
        read(&off).await.is_err(),
        "without failover the primary's error is the answer"
    );
}

#[tokio::test]
async fn fail_back_waits_for_the_hold_down_and_the_successes_in_a_row() {
    observes!(
        "failover.hold_down",
        "failover.fail_back_after",
        "failover.probe_interval"
    );
    let (p, r) = pair().await;
    let settings =
        "replicas = [\"r\"]\nfail_after = 1\nfail_back_after = 2\nprobe_interval = \"50ms\"";
    let quick = open(&config(
        &p,
        &r,
        &format!("{settings}\nhold_down = \"300ms\""),
    ))
    .await;
    let never = open(&config(&p, &r, &format!("{settings}\nhold_down = \"1h\""))).await;
    down(&p);
    for stack in [&quick, &never] {
        assert!(read(stack).await.unwrap().contains("from-r"));
        assert_eq!(stack.failover().unwrap().active(), "r");
    }
    p.set_faults(Faults::default());
    let recovered = Instant::now();
    while quick.failover().unwrap().active() != "p" {
        assert!(
            recovered.elapsed() < Duration::from_secs(10),
            "never failed back"
        );
        read(&quick).await.unwrap();
        read(&never).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Two probes 50 ms apart, after a 300 ms quiet time since the last failure.
    assert!(recovered.elapsed() >= Duration::from_millis(50));
    assert!(read(&quick).await.unwrap().contains("from-p"));
    assert_eq!(quick.failover().unwrap().failovers(), 2);
    // The same recovery with a one-hour hold-down: still on the replica.
    assert_eq!(never.failover().unwrap().active(), "r");
    assert!(read(&never).await.unwrap().contains("from-r"));
}

#[tokio::test]
async fn monotonic_failover_never_goes_back_to_an_older_version() {
    observes!("failover.monotonic");
    let (p, r) = pair().await;
    // The primary has version 2; the replica only version 1.
    p.seed("secret/a", json!({ "value": "from-p-2" }));
    let on = open(&config(
        &p,
        &r,
        "replicas = [\"r\"]\nfail_after = 1\nmonotonic = true",
    ))
    .await;
    let off = open(&config(&p, &r, "replicas = [\"r\"]\nfail_after = 1")).await;
    for stack in [&on, &off] {
        assert!(read(stack).await.unwrap().contains("from-p-2"));
    }
    down(&p);
    let err = read(&on).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        read(&off).await.unwrap().contains("from-r"),
        "without it, the older version"
    );
}

#[tokio::test]
async fn vault_addresses_route_around_a_node_that_refuses() {
    observes!("vault.addresses");
    let fv = FakeVault::start().await;
    fv.seed("secret/a", json!({ "value": "v" }));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let text = format!(
        "[stores.c.vault]\naddresses = [\"http://{dead}\", \"http://{}\"]\nauth.token = \"t\"\n",
        fv.authority()
    );
    let store = Config::from_toml_str(&text)
        .unwrap()
        .open("c")
        .await
        .unwrap();
    for _ in 0..4 {
        assert_eq!(
            store.get_value("a").await.unwrap().expose_str().unwrap(),
            "v"
        );
    }
    // The same dead node alone: unreachable.
    let text = format!("[stores.c.vault]\naddress = \"http://{dead}\"\nauth.token = \"t\"\n");
    let err = Config::from_toml_str(&text)
        .unwrap()
        .open("c")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

#[tokio::test]
async fn envelope_vault_addresses_route_transit_around_a_node_that_refuses() {
    observes!("envelope.vault.addresses");
    let fv = FakeVault::start().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let text = format!(
        "[stores.m.memory]\n[stores.m.envelope]\nprovider = \"vault-transit\"\nkey = \"k\"\ncreate_key = true\n\
         [stores.m.envelope.vault]\naddresses = [\"http://{dead}\", \"http://{}\"]\n\
         auth.token = \"t\"\n",
        fv.authority()
    );
    let store = Config::from_toml_str(&text)
        .unwrap()
        .open("m")
        .await
        .unwrap();
    store.put("a", "sealed").await.unwrap();
    assert_eq!(
        store.get_value("a").await.unwrap().expose_str().unwrap(),
        "sealed"
    );
    assert!(
        !fv.requests().is_empty(),
        "Transit was reached through the second node"
    );
}

#[tokio::test]
async fn bad_values_are_configuration_errors_naming_the_key() {
    let (p, r) = pair().await;
    let cases: Vec<(Config, &str)> = vec![
        (config(&p, &r, "replicas = []"), "stores.p.failover.replicas"),
        (config(&p, &r, "replicas = [\"nowhere\"]"), "stores.p.failover.replicas"),
        (config(&p, &r, "replicas = [\"p\"]"), "stores.p.failover.replicas"),
        (config(&p, &r, "replicas = [\"r\"]\nfail_after = 0"), "fail_after"),
        (config(&p, &r, "replicas = [\"r\"]\nfail_back_after = 0"), "fail_back_after"),
        (config(&p, &r, "replicas = [\"r\"]\nprobe_interval = \"0s\""), "probe_interval"),
        (
            Config::from_toml_str("[stores.c.vault]\naddresses = []\nauth.token = \"t\"").unwrap(),
            "stores.c.vault.addresses",
        ),
        (
            Config::from_toml_str(
                "[stores.c.vault]\naddress = \"http://a:1\"\naddresses = [\"http://b:1\"]\nauth.token = \"t\"",
            )
            .unwrap(),
            "stores.c.vault.addresses",
        ),
        (
            Config::from_toml_str(
                "[stores.c.vault]\naddresses = [\"http://b:1\", \"http://b:1\"]\nauth.token = \"t\"\nlazy = true",
            )
            .unwrap(),
            "stores.c.vault.addresses",
        ),
    ];
    for (config, key) in cases {
        let name = config.store_names().next().unwrap().to_owned();
        let name = if name == "r" { "p".to_owned() } else { name };
        let err = Opener::new()
            .metrics_registry(MetricsRegistry::new())
            .open_named(&config, &name)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{key}: {err}");
        assert!(err.to_string().contains(key), "{key}: {err}");
    }
    // A URI cannot name replicas (they are other stores of a configuration).
    let err = kms::open(&format!(
        "vault+http://{}/secret?auth.token=t&failover.replicas=r",
        p.authority()
    ))
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(err.to_string().contains("failover"), "{err}");
}
