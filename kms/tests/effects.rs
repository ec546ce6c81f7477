//! Every documented option changes what the stack does: each test here sets options and
//! observes their effect (requests a fake Vault records, timings, cache and breaker state,
//! metrics text), never only that they parse. `observes!` marks which options a test covers;
//! `options_reference.rs` fails for a documented option no test observes.

mod common;

use std::time::{Duration, Instant};

use common::fake_vault::{FakeVault, Lease};
use common::http::Faults;
use kms::{CircuitState, ErrorKind, KeyStoreExt, MetricsRegistry, Opener, Stack};
use serde_json::json;

/// A Vault store on `fv` (mount `secret`, token `t`) with `query` added.
fn uri(fv: &FakeVault, query: &str) -> String {
    format!(
        "vault+http://{}/secret?auth.token=t&{query}",
        fv.authority()
    )
}

/// Opens `uri` with metrics (if any) in a registry of its own.
async fn open(uri: &str) -> Stack {
    Opener::new()
        .metrics_registry(MetricsRegistry::new())
        .open(uri)
        .await
        .unwrap_or_else(|e| panic!("{uri}: {e}"))
}

/// KV v2 reads of `secret` the fake has answered.
fn reads(fv: &FakeVault) -> usize {
    fv.api_requests("secret/data/")
        .iter()
        .filter(|r| r.method == "GET")
        .count()
}

fn seeded(fv: &FakeVault, keys: &[&str]) {
    for k in keys {
        fv.seed(&format!("secret/{k}"), json!({ "value": format!("v-{k}") }));
    }
}

// ---------------------------------------------------------------------------------------------
// uri, memory, validate

#[tokio::test]
async fn a_uri_key_is_the_store_and_tables_refine_it() {
    observes!("uri");
    let config = kms::Config::from_toml_str(
        "[stores.t]\nuri = \"memory://?max_versions=1\"\n[stores.t.validate]\nmax_value_len = 3\n",
    )
    .unwrap();
    let store = config.open("t").await.unwrap();
    assert_eq!(store.to_string(), "Validate(Memory)");
    store.put("k", "one").await.unwrap();
    store.put("k", "two").await.unwrap();
    let key = kms::KeyName::new("k").unwrap();
    assert!(
        store.get_version(&key, "1").await.is_err(),
        "max_versions=1 from the uri"
    );
}

#[tokio::test]
async fn validate_limits_values_unless_turned_off() {
    observes!("validate.enabled", "validate.max_value_len");
    let on = kms::open("memory://?validate.max_value_len=4")
        .await
        .unwrap();
    let err = on.put("k", "12345").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let off = kms::open("memory://?validate.max_value_len=4&validate.enabled=false")
        .await
        .unwrap();
    off.put("k", "12345").await.unwrap();
    assert_eq!(off.to_string(), "Memory");
}

// ---------------------------------------------------------------------------------------------
// cache

#[tokio::test]
async fn the_cache_answers_repeated_reads_until_the_ttl() {
    observes!("cache.enabled", "cache.ttl");
    let fv = FakeVault::start().await;
    seeded(&fv, &["a"]);
    let s = open(&uri(&fv, "cache.ttl=300ms")).await;
    for _ in 0..3 {
        s.store().get_value("a").await.unwrap();
    }
    assert_eq!(reads(&fv), 1, "answered from the cache within the ttl");
    tokio::time::sleep(Duration::from_millis(450)).await;
    s.store().get_value("a").await.unwrap();
    assert_eq!(reads(&fv), 2, "reloaded after the ttl");

    fv.clear();
    let off = open(&uri(&fv, "cache.ttl=1m&cache.enabled=false")).await;
    for _ in 0..3 {
        off.store().get_value("a").await.unwrap();
    }
    assert_eq!(reads(&fv), 3, "no cache");
}

#[tokio::test]
async fn jitter_shortens_some_ttls() {
    observes!("cache.jitter");
    let fv = FakeVault::start().await;
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    seeded(&fv, &keys.iter().map(String::as_str).collect::<Vec<_>>());
    let reloads_after = |query: &'static str| {
        let fv = fv.clone();
        let keys = keys.clone();
        async move {
            let s = open(&uri(&fv, query)).await;
            for k in &keys {
                s.store().get_value(k).await.unwrap();
            }
            fv.clear();
            tokio::time::sleep(Duration::from_millis(650)).await;
            for k in &keys {
                s.store().get_value(k).await.unwrap();
            }
            reads(&fv)
        }
    };
    // TTL 1 s: without jitter nothing expires by 0.65 s; with 0.9 each TTL is uniform in
    // 0.1–1 s, so about 60 % have (all 20 surviving has odds below 1e-7).
    assert_eq!(reloads_after("cache.ttl=1s&cache.jitter=0.0").await, 0);
    assert!(reloads_after("cache.ttl=1s&cache.jitter=0.9").await > 0);
}

#[tokio::test]
async fn time_to_idle_expires_unread_entries() {
    observes!("cache.time_to_idle");
    let fv = FakeVault::start().await;
    seeded(&fv, &["a"]);
    let s = open(&uri(&fv, "cache.ttl=1m&cache.time_to_idle=200ms")).await;
    s.store().get_value("a").await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    s.store().get_value("a").await.unwrap();
    assert_eq!(reads(&fv), 2);
}

#[tokio::test]
async fn the_cache_is_bounded_by_entries_or_bytes() {
    observes!("cache.max_entries", "cache.max_bytes");
    let fv = FakeVault::start().await;
    let keys: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
    seeded(&fv, &keys.iter().map(String::as_str).collect::<Vec<_>>());
    for query in [
        "cache.ttl=1m&cache.max_entries=5",
        "cache.ttl=1m&cache.max_bytes=200",
        "cache.ttl=1m",
    ] {
        let s = open(&uri(&fv, query)).await;
        for k in &keys {
            s.store().get_value(k).await.unwrap();
        }
        // Give the eviction policy time to run, then read everything again.
        tokio::time::sleep(Duration::from_millis(100)).await;
        for k in &keys {
            s.store().get_value(k).await.unwrap();
        }
        let stats = s.cache().unwrap().stats();
        match query {
            "cache.ttl=1m" => assert_eq!(stats.entries, 50, "{stats:?}"),
            "cache.ttl=1m&cache.max_entries=5" => {
                assert!(stats.entries <= 5 && stats.evictions_size > 0, "{stats:?}")
            }
            _ => assert!(
                stats.weighted_bytes <= 200 && stats.evictions_size > 0,
                "{stats:?}"
            ),
        }
    }
}

#[tokio::test]
async fn refresh_ahead_reloads_before_expiry() {
    observes!("cache.refresh_ahead");
    let fv = FakeVault::start().await;
    seeded(&fv, &["a"]);
    let s = open(&uri(
        &fv,
        "cache.ttl=1s&cache.jitter=0.0&cache.refresh_ahead=0.3",
    ))
    .await;
    s.store().get_value("a").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.store().get_value("a").await.unwrap(); // a hit past 30 % of the TTL: reload behind it
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(reads(&fv), 2, "a background reload before the 1 s TTL");
    assert!(s.cache().unwrap().stats().hits >= 1);
}

#[tokio::test]
async fn stale_if_error_serves_the_last_value_through_an_outage_longer_than_the_ttl() {
    observes!("cache.stale_if_error");
    let fv = FakeVault::start().await;
    seeded(&fv, &["a"]);
    let with = open(&uri(&fv, "cache.ttl=200ms&cache.stale_if_error=1h")).await;
    let without = open(&uri(&fv, "cache.ttl=200ms")).await;
    with.store().get_value("a").await.unwrap();
    without.store().get_value("a").await.unwrap();
    fv.fail_with(Some(503));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let v = with.store().get_value("a").await.unwrap();
    assert_eq!(v.expose_str().unwrap(), "v-a");
    assert_eq!(with.cache().unwrap().stats().stale_serves, 1);
    let err = without.store().get_value("a").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

#[tokio::test]
async fn stale_while_revalidate_answers_without_waiting_for_a_slow_reload() {
    observes!("cache.stale_while_revalidate");
    let fv = FakeVault::start().await;
    seeded(&fv, &["a"]);
    // A `get` of an expired key waits this long for a slow reload, then is served stale.
    for (query, quick) in [
        (
            "cache.ttl=200ms&cache.stale_if_error=1h&cache.stale_while_revalidate=0s",
            true,
        ),
        (
            "cache.ttl=200ms&cache.stale_if_error=1h&cache.stale_while_revalidate=900ms",
            false,
        ),
    ] {
        fv.set_faults(Faults::default());
        let s = open(&uri(&fv, query)).await;
        s.store().get_value("a").await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        fv.set_faults(Faults {
            delay: Some(Duration::from_millis(1500)),
            ..Faults::default()
        });
        let started = Instant::now();
        s.store().get_value("a").await.unwrap();
        let took = started.elapsed();
        assert_eq!(
            took < Duration::from_millis(500),
            quick,
            "{query}: {took:?}"
        );
        assert!(
            took < Duration::from_millis(1400),
            "served stale, not reloaded: {took:?}"
        );
        assert_eq!(s.cache().unwrap().stats().stale_serves, 1, "{query}");
    }
}

#[tokio::test]
async fn load_timeout_bounds_one_load() {
    observes!("cache.load_timeout");
    let fv = FakeVault::start().await;
    seeded(&fv, &["a"]);
    let s = open(&uri(&fv, "cache.ttl=1m&cache.load_timeout=200ms")).await;
    fv.set_faults(Faults {
        delay: Some(Duration::from_secs(3)),
        ..Faults::default()
    });
    let started = Instant::now();
    let err = s.store().get_value("a").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn negative_ttl_remembers_missing_keys() {
    observes!("cache.negative_ttl");
    let fv = FakeVault::start().await;
    for (query, want) in [
        ("cache.ttl=1m&cache.negative_ttl=1m", 1),
        ("cache.ttl=1m", 2),
    ] {
        fv.clear();
        let s = open(&uri(&fv, query)).await;
        for _ in 0..2 {
            let err = s.store().get_value("missing").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound);
        }
        assert_eq!(reads(&fv), want, "{query}");
    }
}

// ---------------------------------------------------------------------------------------------
// retry

/// Opens `query` over a fake that fails every KV request with 503; returns the KV requests
/// one `get` caused and how long it took.
async fn failing_get(query: &str) -> (usize, Duration) {
    let fv = FakeVault::start().await;
    let s = open(&uri(&fv, query)).await;
    fv.set_faults(Faults {
        status: Some(503),
        only_path: Some("/secret/".into()),
        ..Faults::default()
    });
    let started = Instant::now();
    let err = s.store().get_value("a").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    (fv.count("/secret/"), started.elapsed())
}

#[tokio::test]
async fn retries_repeat_transient_failures() {
    observes!("retry.enabled", "retry.max_retries");
    assert_eq!(
        failing_get("retry.max_retries=2&retry.base_delay=1ms")
            .await
            .0,
        3
    );
    assert_eq!(
        failing_get("retry.max_retries=2&retry.base_delay=1ms&retry.enabled=false")
            .await
            .0,
        1
    );
}

#[tokio::test]
async fn backoff_delays_follow_base_jitter_and_cap() {
    observes!("retry.base_delay", "retry.jitter", "retry.max_delay");
    let (_, slow) = failing_get("retry.max_retries=1&retry.base_delay=400ms&retry.jitter=0s").await;
    assert!(slow >= Duration::from_millis(400), "{slow:?}");
    let (_, fast) = failing_get("retry.max_retries=1&retry.base_delay=1ms&retry.jitter=0s").await;
    assert!(fast < Duration::from_millis(300), "{fast:?}");
    // Jitter adds up to 400 ms per retry: three retries all under 20 ms have odds of 1e-4.
    let (_, jittered) =
        failing_get("retry.max_retries=3&retry.base_delay=1ms&retry.jitter=400ms").await;
    assert!(jittered >= Duration::from_millis(60), "{jittered:?}");
    // 200, 400, 800 ms uncapped; 200 ms each capped.
    let (_, capped) = failing_get(
        "retry.max_retries=3&retry.base_delay=200ms&retry.jitter=0s&retry.max_delay=200ms&retry.budget=off",
    )
    .await;
    assert!(capped < Duration::from_millis(1100), "{capped:?}");
    let (_, uncapped) =
        failing_get("retry.max_retries=3&retry.base_delay=200ms&retry.jitter=0s&retry.budget=off")
            .await;
    assert!(uncapped >= Duration::from_millis(1400), "{uncapped:?}");
}

#[tokio::test]
async fn the_budget_ends_retrying() {
    observes!("retry.budget");
    let (n, _) = failing_get(
        "retry.max_retries=10&retry.base_delay=150ms&retry.max_delay=150ms&retry.jitter=0s&retry.budget=300ms",
    )
    .await;
    assert!(n <= 4, "{n} attempts within a 300 ms budget");
    let (n, _) = failing_get(
        "retry.max_retries=10&retry.base_delay=10ms&retry.max_delay=10ms&retry.jitter=0s&retry.budget=off",
    )
    .await;
    assert_eq!(n, 11);
}

#[tokio::test]
async fn writes_and_removes_are_retried_only_when_allowed() {
    observes!("retry.retry_store", "retry.retry_remove");
    for (flag, want) in [("true", 3), ("false", 1)] {
        let fv = FakeVault::start().await;
        seeded(&fv, &["a"]);
        let s = open(&uri(
            &fv,
            &format!(
                "retry.max_retries=2&retry.base_delay=1ms&retry.retry_store={flag}&retry.retry_remove={flag}"
            ),
        ))
        .await;
        fv.clear();
        fv.set_faults(Faults {
            status: Some(503),
            only_path: Some("/secret/".into()),
            ..Faults::default()
        });
        // Each attempt of a write sends one request (a retried write first reads whether the
        // failed attempt landed); each attempt of a remove reads the metadata first.
        s.store().put("a", "x").await.unwrap_err();
        assert_eq!(fv.count("/secret/data/a"), want, "retry_store={flag}");
        fv.clear();
        s.store().delete("a").await.unwrap_err();
        assert_eq!(fv.count("/secret/metadata/a"), want, "retry_remove={flag}");
    }
}

// ---------------------------------------------------------------------------------------------
// timeout

#[tokio::test]
async fn deadlines_per_operation() {
    observes!(
        "timeout.enabled",
        "timeout.all",
        "timeout.get",
        "timeout.store",
        "timeout.remove",
        "timeout.list",
        "timeout.health"
    );
    let fv = FakeVault::start().await;
    seeded(&fv, &["a"]);
    let slow = || {
        fv.set_faults(Faults {
            delay: Some(Duration::from_millis(600)),
            ..Faults::default()
        })
    };
    let timed_out = |r: kms::Result<()>| matches!(r, Err(e) if e.kind() == ErrorKind::Timeout);
    // (query, which of get / store / remove / list / health time out)
    for (query, want) in [
        ("timeout.all=100ms", [true, true, true, true, true]),
        ("timeout.get=100ms", [true, false, false, false, false]),
        ("timeout.store=100ms", [false, true, false, false, false]),
        ("timeout.remove=100ms", [false, false, true, false, false]),
        ("timeout.list=100ms", [false, false, false, true, false]),
        ("timeout.health=100ms", [false, false, false, false, true]),
        (
            "timeout.all=100ms&timeout.enabled=false",
            [false, false, false, false, false],
        ),
    ] {
        fv.set_faults(Faults::default());
        seeded(&fv, &["a"]);
        let s = open(&uri(&fv, query)).await;
        let store = s.store().clone();
        slow();
        let got = [
            timed_out(store.get_value("a").await.map(drop)),
            timed_out(store.put("b", "x").await.map(drop)),
            timed_out(store.delete("a").await.map(drop)),
            timed_out(store.list_sorted("").await.map(drop)),
            timed_out(store.health().await),
        ];
        assert_eq!(got, want, "{query}");
    }
}

// ---------------------------------------------------------------------------------------------
// breaker

/// A store over a fake whose KV answers fail from now on.
async fn breaker_stack(query: &str) -> (FakeVault, Stack) {
    let fv = FakeVault::start().await;
    seeded(&fv, &["a"]);
    let s = open(&uri(&fv, query)).await;
    (fv, s)
}

fn kv_faults(fv: &FakeVault, status: Option<u16>, delay: Option<Duration>) {
    fv.set_faults(Faults {
        status,
        delay,
        only_path: Some("/secret/".into()),
        times: None,
    });
}

#[tokio::test]
async fn the_circuit_opens_on_the_configured_failure_share() {
    observes!(
        "breaker.enabled",
        "breaker.window",
        "breaker.min_calls",
        "breaker.failure_ratio"
    );
    // (query, calls: true = success, whether the circuit is open after them)
    for (query, calls, open_after) in [
        (
            "breaker.window=2&breaker.min_calls=2",
            &[false, false][..],
            true,
        ),
        (
            "breaker.window=3&breaker.min_calls=3",
            &[false, false][..],
            false,
        ),
        (
            "breaker.window=4&breaker.min_calls=1",
            &[true, true, true, false][..],
            false,
        ),
        (
            "breaker.window=1&breaker.min_calls=1",
            &[true, true, true, false][..],
            true,
        ),
        (
            "breaker.window=2&breaker.min_calls=2&breaker.failure_ratio=0.75",
            &[true, false][..],
            false,
        ),
        (
            "breaker.window=2&breaker.min_calls=2&breaker.failure_ratio=0.5",
            &[true, false][..],
            true,
        ),
    ] {
        let (fv, s) = breaker_stack(query).await;
        for ok in calls {
            kv_faults(&fv, (!ok).then_some(503), None);
            let _ = s.store().get_value("a").await;
        }
        let state = s.breaker().unwrap().state();
        assert_eq!(
            state == CircuitState::Open,
            open_after,
            "{query}: {state:?}"
        );
    }
    let fv = FakeVault::start().await;
    let off = open(&uri(&fv, "breaker.window=2&breaker.enabled=false")).await;
    assert!(off.breaker().is_none());
}

/// Opens the circuit of `s` (window 1, min 1 call).
async fn trip(fv: &FakeVault, s: &Stack) {
    kv_faults(fv, Some(503), None);
    let _ = s.store().get_value("a").await;
    assert_eq!(s.breaker().unwrap().state(), CircuitState::Open);
}

#[tokio::test]
async fn the_open_delay_and_the_trials_close_the_circuit() {
    observes!(
        "breaker.open_delay",
        "breaker.success_threshold",
        "breaker.half_open_calls"
    );
    let base = "breaker.window=1&breaker.min_calls=1";
    // open_delay: an open circuit sends nothing until it has passed.
    let (fv, s) = breaker_stack(&format!("{base}&breaker.open_delay=1h")).await;
    trip(&fv, &s).await;
    kv_faults(&fv, None, None);
    fv.clear();
    let err = s.store().get_value("a").await.unwrap_err();
    assert_eq!(fv.count("/secret/"), 0, "{err}");
    // success_threshold: one trial success closes with 1, not with 3.
    for (threshold, closed) in [(1, true), (3, false)] {
        let (fv, s) = breaker_stack(&format!(
            "{base}&breaker.open_delay=100ms&breaker.success_threshold={threshold}"
        ))
        .await;
        trip(&fv, &s).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        kv_faults(&fv, None, None);
        s.store().get_value("a").await.unwrap();
        let state = s.breaker().unwrap().state();
        assert_eq!(
            state == CircuitState::Closed,
            closed,
            "{threshold}: {state:?}"
        );
    }
    // half_open_calls: how many slow trials go through at once.
    for (calls, want) in [(1, 1), (3, 3)] {
        let (fv, s) = breaker_stack(&format!(
            "{base}&breaker.open_delay=100ms&breaker.success_threshold=5&breaker.half_open_calls={calls}"
        ))
        .await;
        trip(&fv, &s).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        kv_faults(&fv, None, Some(Duration::from_millis(300)));
        fv.clear();
        let store = s.store().clone();
        let gets = (0..3).map(|_| {
            let store = store.clone();
            async move { store.get_value("a").await.is_ok() }
        });
        let oks = futures_join(gets)
            .await
            .into_iter()
            .filter(|ok| *ok)
            .count();
        assert_eq!(oks, want, "half_open_calls={calls}");
        assert_eq!(fv.count("/secret/data/"), want);
    }
}

#[tokio::test]
async fn a_slow_trial_counts_as_a_failure_after_the_trial_timeout() {
    observes!("breaker.trial_timeout");
    for (timeout, reopened) in [("100ms", true), ("10s", false)] {
        let (fv, s) = breaker_stack(&format!(
            "breaker.window=1&breaker.min_calls=1&breaker.open_delay=100ms&breaker.trial_timeout={timeout}"
        ))
        .await;
        trip(&fv, &s).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        kv_faults(&fv, None, Some(Duration::from_millis(800)));
        let store = s.store().clone();
        let trial = tokio::spawn(async move { store.get_value("a").await.map(drop) });
        tokio::time::sleep(Duration::from_millis(400)).await;
        let state = s.breaker().unwrap().state();
        assert_eq!(
            state == CircuitState::Open,
            reopened,
            "{timeout}: {state:?}"
        );
        let _ = trial.await;
    }
}

/// Runs the futures concurrently on this task.
async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.map(Box::pin).collect();
    let mut out = Vec::new();
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(results.into_iter().map(Option::unwrap));
    out
}

// ---------------------------------------------------------------------------------------------
// metrics

fn line_of<'t>(text: &'t str, start: &str) -> Option<&'t str> {
    text.lines().find(|l| l.starts_with(start))
}

#[tokio::test]
async fn metrics_are_named_and_labelled_as_configured() {
    observes!("metrics.enabled", "metrics.prefix", "metrics.store");
    let fv = FakeVault::start().await;
    seeded(&fv, &["a"]);
    let s = open(&uri(
        &fv,
        "metrics.prefix=fx_named&metrics.store=eu-1&metrics.health_probe=off",
    ))
    .await;
    s.store().get_value("a").await.unwrap();
    let text = s.metrics_text().unwrap();
    assert!(
        text.contains("fx_named_key_operations_total{") && text.contains("store=\"eu-1\""),
        "{text}"
    );
    let off = open(&uri(&fv, "metrics.prefix=fx_off&metrics.enabled=false")).await;
    assert!(off.metrics().is_none() && off.metrics_text().is_none());
    assert!(!off.store().to_string().contains("Instrumented"));
}

/// Counts events on `target` while `f` runs on this thread.
async fn events_on<F: std::future::Future<Output = ()>>(target: &'static str, f: F) -> usize {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tracing_subscriber::layer::SubscriberExt;

    struct Count(Arc<AtomicUsize>, &'static str);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Count {
        fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            if e.metadata().target() == self.1 {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    let n = Arc::new(AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(Count(n.clone(), target));
    let _guard = tracing::subscriber::set_default(subscriber);
    f.await;
    n.load(Ordering::SeqCst)
}

#[tokio::test]
async fn audit_events_follow_metrics_audit() {
    observes!("metrics.audit");
    let fv = FakeVault::start().await;
    seeded(&fv, &["a"]);
    for (flag, some) in [("true", true), ("false", false)] {
        let s = open(&uri(
            &fv,
            &format!(
                "metrics.prefix=fx_audit_{flag}&metrics.audit={flag}&metrics.health_probe=off"
            ),
        ))
        .await;
        let n = events_on(kms::metrics::AUDIT_TARGET, async {
            s.store().put("a", "x").await.unwrap();
        })
        .await;
        assert_eq!(n > 0, some, "audit={flag}: {n} events");
    }
}

#[tokio::test]
async fn the_monitor_probes_health_at_the_interval_within_the_probe_timeout() {
    observes!("metrics.health_probe", "metrics.probe_timeout");
    let fv = FakeVault::start().await;
    let _s = open(&uri(
        &fv,
        "metrics.prefix=fx_probe&metrics.health_probe=100ms",
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(550)).await;
    assert!(fv.count("sys/health") >= 3, "{}", fv.count("sys/health"));
    let quiet = FakeVault::start().await;
    let _off = open(&uri(
        &quiet,
        "metrics.prefix=fx_probe_off&metrics.health_probe=off",
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(quiet.count("sys/health"), 0);
    // A probe slower than the probe timeout marks the backend down.
    let slow = FakeVault::start().await;
    slow.set_faults(Faults {
        delay: Some(Duration::from_secs(2)),
        only_path: Some("sys/health".into()),
        ..Faults::default()
    });
    let s = open(&uri(
        &slow,
        "metrics.prefix=fx_probe_slow&metrics.health_probe=100ms&metrics.probe_timeout=100ms",
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let report = s.health_report().unwrap();
    let b = &report.backends[0];
    assert_eq!(b.up, Some(false), "{}", report.to_json());
    assert_eq!(b.last_error_kind, Some("timeout"), "{}", report.to_json());
}

/// While the probe says the backend is down, it probes at `health_probe_while_down` instead
/// of `health_probe`, so a recovery is seen that soon.
#[tokio::test]
async fn the_monitor_probes_faster_while_the_backend_is_down() {
    observes!("metrics.health_probe_while_down");
    let down = FakeVault::start().await;
    down.set_faults(Faults {
        status: Some(503),
        only_path: Some("sys/health".into()),
        ..Faults::default()
    });
    let _s = open(&uri(
        &down,
        "metrics.prefix=fx_probe_down&metrics.health_probe=10s&metrics.health_probe_while_down=100ms",
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let fast = down.count("sys/health");
    assert!(fast >= 3, "probes while down: {fast}");
    // The same store with the backend up probes at the 10 s interval only.
    let up = FakeVault::start().await;
    let _s = open(&uri(
        &up,
        "metrics.prefix=fx_probe_up&metrics.health_probe=10s&metrics.health_probe_while_down=100ms",
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        up.count("sys/health") <= 1,
        "probes while up: {}",
        up.count("sys/health")
    );
}

fn key_age(text: &str, prefix: &str) -> u64 {
    line_of(text, &format!("{prefix}_key_age_seconds{{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no key age in {text}")) as u64
}

#[tokio::test]
async fn key_age_tracks_keys_within_the_window_and_the_bound() {
    observes!("metrics.key_age_window", "metrics.max_tracked_keys");
    let fv = FakeVault::start().await;
    fv.seed_created("secret/new", json!({ "v": "n" }), "2026-06-01T00:00:00Z");
    fv.seed_created("secret/old", json!({ "v": "o" }), "2020-01-01T00:00:00Z");
    let read_both = |s: &Stack| {
        let store = s.store().clone();
        async move {
            store.get_value("new").await.unwrap();
            store.get_value("old").await.unwrap();
        }
    };
    let all = open(&uri(
        &fv,
        "metrics.prefix=fx_age_all&metrics.health_probe=off",
    ))
    .await;
    read_both(&all).await;
    let bounded = open(&uri(
        &fv,
        "metrics.prefix=fx_age_one&metrics.health_probe=off&metrics.max_tracked_keys=1",
    ))
    .await;
    read_both(&bounded).await;
    let all_age = key_age(&all.metrics_text().unwrap(), "fx_age_all");
    let one_age = key_age(&bounded.metrics_text().unwrap(), "fx_age_one");
    assert!(
        one_age < all_age,
        "only `new` is tracked: {one_age} vs {all_age}"
    );
    let windowed = open(&uri(
        &fv,
        "metrics.prefix=fx_age_win&metrics.health_probe=off&metrics.key_age_window=100ms",
    ))
    .await;
    read_both(&windowed).await;
    assert!(key_age(&windowed.metrics_text().unwrap(), "fx_age_win") > 0);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(key_age(&windowed.metrics_text().unwrap(), "fx_age_win"), 0);
}

#[tokio::test]
async fn the_failure_recorder_is_configured_by_its_table() {
    observes!(
        "metrics.failure_recorder.enabled",
        "metrics.failure_recorder.window",
        "metrics.failure_recorder.max_records",
        "metrics.failure_recorder.queue",
        "metrics.failure_recorder.min_operations",
        "metrics.failure_recorder.failure_rate_threshold_percent",
        "metrics.failure_recorder.problematic_operations",
        "metrics.failure_recorder.top_failures"
    );
    let day = Duration::from_secs(86_400);
    let fv = FakeVault::start().await;
    seeded(&fv, &["a", "b"]);
    let fr = |n: &str, q: &str| {
        uri(
            &fv,
            &format!(
                "metrics.prefix=fx_fr_{n}&metrics.health_probe=off&metrics.failure_recorder.{q}"
            ),
        )
    };
    // enabled
    let off = open(&fr("off", "enabled=false")).await;
    assert!(off.failure_recorder().is_none());
    // window: a summary covers at most the window.
    let s = open(&fr("window", "window=1h")).await;
    let summary = s.failure_recorder().unwrap().summary(day);
    assert!((summary.timeframe_hours - 1.0).abs() < 1e-9, "{summary:?}");
    // max_records: the records kept.
    for (n, q, want) in [(1, "max_records=2", 2), (2, "enabled=true", 10)] {
        let s = open(&fr(&format!("rec{n}"), q)).await;
        for _ in 0..10 {
            s.store().get_value("a").await.unwrap();
        }
        let r = s.failure_recorder().unwrap();
        r.summary(day);
        assert_eq!(r.len(), want, "{q}");
    }
    // queue: records wait in it for the next summary; a full one while a summary runs drops
    // them. With a summary running all the time, a queue of 1 overflows, 8192 does not.
    for (q, drops) in [("queue=1", true), ("queue=8192", false)] {
        let s = open(&format!(
            "memory://?metrics.prefix=fx_fr_queue_{}&metrics.health_probe=off&metrics.failure_recorder.{q}",
            q.len()
        ))
        .await;
        s.store().put("a", "x").await.unwrap();
        let r = s.failure_recorder().unwrap().clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let summaries = {
            let (r, stop) = (r.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    r.summary(day);
                }
            })
        };
        for _ in 0..2000 {
            s.store().get_value("a").await.unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        summaries.join().unwrap();
        assert_eq!(r.dropped() > 0, drops, "{q}: {} dropped", r.dropped());
    }
    // min_operations, failure_rate_threshold_percent, problematic_operations: `a` has 1
    // failed `get` of 4 (25 %).
    let problematic = |q: String| {
        let fv = fv.clone();
        async move {
            let s = open(&q).await;
            for _ in 0..3 {
                s.store().get_value("a").await.unwrap();
            }
            kv_faults(&fv, Some(503), None);
            let _ = s.store().get_value("a").await;
            kv_faults(&fv, None, None);
            s.failure_recorder()
                .unwrap()
                .summary(day)
                .problematic_keys
                .len()
        }
    };
    let judged = |n: &str, more: &str| {
        fr(
            n,
            &format!("problematic_operations=get&metrics.failure_recorder.{more}"),
        )
    };
    assert_eq!(problematic(judged("p1", "min_operations=4")).await, 1);
    assert_eq!(problematic(judged("p2", "min_operations=5")).await, 0);
    assert_eq!(
        problematic(judged(
            "p3",
            "min_operations=1&metrics.failure_recorder.failure_rate_threshold_percent=30"
        ))
        .await,
        0
    );
    assert_eq!(
        problematic(judged(
            "p4",
            "min_operations=1&metrics.failure_recorder.failure_rate_threshold_percent=20"
        ))
        .await,
        1
    );
    assert_eq!(
        problematic(fr("p5", "min_operations=1")).await,
        0,
        "gets are not judged by default (decrypt only)"
    );
    // top_failures: `get` and `store` failures are two rows; one with top_failures=1.
    for (n, want) in [(1, 1), (10, 2)] {
        let s = open(&fr(&format!("top{n}"), &format!("top_failures={n}"))).await;
        kv_faults(&fv, Some(503), None);
        let _ = s.store().get_value("a").await;
        let _ = s.store().put("b", "x").await;
        kv_faults(&fv, None, None);
        let top = s.failure_recorder().unwrap().summary(day).top_failures;
        assert_eq!(top.len(), want, "{top:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// envelope

#[tokio::test]
async fn envelope_encryption_with_a_local_key() {
    observes!(
        "envelope.enabled",
        "envelope.provider",
        "envelope.master_key",
        "envelope.context.<name>"
    );
    const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const KEY_B: &str = "HxwdHhscGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";
    let fv = FakeVault::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = |k: &str| {
        let p = dir.path().join(format!("key-{}", &k[..4]));
        std::fs::write(&p, k).unwrap();
        p.display().to_string()
    };
    let sealed = |k: &str, ctx: &str| {
        uri(
            &fv,
            &format!(
                "envelope.provider=local&envelope.master_key=file:{}&envelope.context.tenant={ctx}",
                key(k)
            ),
        )
    };
    let a = open(&sealed(KEY_A, "acme")).await;
    a.store().put("x", "plaintext").await.unwrap();
    let stored = fv.data("secret/x").unwrap().to_string();
    assert!(!stored.contains("plaintext"), "{stored}");
    assert_eq!(
        a.store()
            .get_value("x")
            .await
            .unwrap()
            .expose_str()
            .unwrap(),
        "plaintext"
    );
    // Another master key, or another context, cannot read it.
    let other_key = open(&sealed(KEY_B, "acme")).await;
    assert!(other_key.store().get_value("x").await.is_err());
    let other_context = open(&sealed(KEY_A, "globex")).await;
    assert!(other_context.store().get_value("x").await.is_err());
    // Turned off: stored as given.
    let off = open(&uri(
        &fv,
        "envelope.provider=local-ephemeral&envelope.enabled=false",
    ))
    .await;
    off.store().put("y", "plaintext").await.unwrap();
    assert!(
        fv.data("secret/y")
            .unwrap()
            .to_string()
            .contains("plaintext")
    );
}

/// Opens a memory store sealed with Vault Transit on `fv`, with `query`.
async fn transit_over_memory(fv: &FakeVault, query: &str) -> Stack {
    open(&format!(
        "memory://?envelope.provider=vault-transit&envelope.vault.address={}\
         &envelope.vault.auth.token=t&{query}",
        fv.url()
    ))
    .await
}

fn transit_calls(fv: &FakeVault, op: &str) -> usize {
    fv.requests()
        .iter()
        .filter(|r| r.path.contains(&format!("/{op}/")))
        .count()
}

#[tokio::test]
async fn vault_transit_keys_mounts_and_data_key_reuse() {
    observes!(
        "envelope.key",
        "envelope.transit_mount",
        "envelope.create_key",
        "envelope.key_cache.max_age",
        "envelope.key_cache.max_uses",
        "envelope.key_cache.max_decrypted"
    );
    let fv = FakeVault::start().await;
    let s = transit_over_memory(
        &fv,
        "envelope.key=payments&envelope.transit_mount=transit-eu&envelope.create_key=true",
    )
    .await;
    let created = fv
        .api_requests("transit-eu/keys/payments")
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(created, 1, "created at build");
    s.store().put("a", "x").await.unwrap();
    assert_eq!(fv.count("/v1/transit-eu/datakey/plaintext/payments"), 1);
    // Data-key reuse: two writes share one data key unless max_uses or max_age say otherwise.
    for (q, want) in [
        ("", 1),
        ("&envelope.key_cache.max_uses=1", 2),
        ("&envelope.key_cache.max_age=0s", 2),
    ] {
        let fv = FakeVault::start().await;
        let s =
            transit_over_memory(&fv, &format!("envelope.key=k&envelope.create_key=true{q}")).await;
        s.store().put("a", "x").await.unwrap();
        s.store().put("b", "y").await.unwrap();
        assert_eq!(transit_calls(&fv, "datakey"), want, "{q}");
    }
    // Decrypted data keys remembered: a reader that did not write the value decrypts its
    // data key once for two reads, unless none are remembered.
    for (q, want) in [("", 1), ("&envelope.key_cache.max_decrypted=0", 2)] {
        let fv = FakeVault::start().await;
        let sealed = "envelope.provider=vault-transit&envelope.key=k&envelope.create_key=true";
        let writer = open(&uri(&fv, sealed)).await;
        writer.store().put("a", "x").await.unwrap();
        let reader = open(&uri(&fv, &format!("{sealed}{q}"))).await;
        reader.store().get_value("a").await.unwrap();
        reader.store().get_value("a").await.unwrap();
        assert_eq!(transit_calls(&fv, "decrypt"), want, "{q}");
    }
}

// ---------------------------------------------------------------------------------------------
// vault connection options: as `vault.*` for the store and `envelope.vault.*` for Transit

/// The two places a Vault connection is configured: the store's own, and Vault Transit's
/// over a memory store. Returns the stack and the API path its data calls use.
async fn connection(fv: &FakeVault, base: &str, query: &str) -> kms::Result<Stack> {
    // In a Vault URI the store's own options are bare; Transit's are under `envelope.vault`.
    let uri = if base == "vault" {
        let q = query.replace("{b}.", "");
        format!("vault+http://{}/secret?{q}", fv.authority())
    } else {
        let q = query.replace("{b}", base);
        format!(
            "memory://?envelope.provider=vault-transit&envelope.key=k\
             &envelope.vault.address={}&{q}",
            fv.url()
        )
    };
    Opener::new()
        .metrics_registry(MetricsRegistry::new())
        .open(&uri)
        .await
}

/// A write and a read through the connection (a KV write, or a Transit data key).
async fn use_it(s: &Stack) {
    s.store().put("used", "value").await.unwrap();
    s.store().get_value("used").await.unwrap();
}

#[tokio::test]
async fn the_address_namespace_and_token_reach_every_request() {
    observes!(
        "vault.address",
        "vault.namespace",
        "vault.auth.token",
        "vault.auth.method",
        "envelope.vault.address",
        "envelope.vault.namespace",
        "envelope.vault.auth.token",
        "envelope.vault.auth.method"
    );
    for base in ["vault", "envelope.vault"] {
        let fv = FakeVault::start().await;
        let s = connection(
            &fv,
            base,
            "{b}.namespace=team-a&{b}.auth.method=token&{b}.auth.token=tok-123",
        )
        .await
        .unwrap();
        use_it(&s).await;
        let requests = fv.requests();
        assert!(
            requests.len() >= 3,
            "{base}: the address is where requests go"
        );
        for r in &requests {
            if r.path == "/v1/sys/health" {
                continue;
            }
            assert_eq!(
                r.header("x-vault-namespace"),
                Some("team-a"),
                "{base} {r:?}"
            );
            assert_eq!(r.header("x-vault-token"), Some("tok-123"), "{base} {r:?}");
        }
    }
}

#[tokio::test]
async fn lazy_builds_without_io_and_connects_on_first_use() {
    observes!("vault.lazy", "envelope.vault.lazy");
    // The input: nothing listens on port 1, and lazy builds anyway.
    let s = open("vault+http://127.0.0.1:1/secret?auth.token=x&lazy=true").await;
    let err = s.store().get_value("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let err = kms::open("vault+http://127.0.0.1:1/secret?auth.token=x")
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Unavailable,
        "not lazy: fails at build: {err}"
    );
    for base in ["vault", "envelope.vault"] {
        let fv = FakeVault::start().await;
        let s = connection(&fv, base, "{b}.auth.token=t&{b}.lazy=true")
            .await
            .unwrap();
        assert_eq!(fv.requests().len(), 0, "{base}: no I/O at build");
        use_it(&s).await;
        assert!(
            fv.count("lookup-self") >= 1,
            "{base}: looked up on first use"
        );
        let eager = FakeVault::start().await;
        connection(&eager, base, "{b}.auth.token=t").await.unwrap();
        assert!(
            eager.count("lookup-self") >= 1,
            "{base}: looked up at build"
        );
    }
}

#[tokio::test]
async fn request_timeout_bounds_each_request() {
    observes!("vault.request_timeout", "envelope.vault.request_timeout");
    for base in ["vault", "envelope.vault"] {
        let fv = FakeVault::start().await;
        fv.set_faults(Faults {
            delay: Some(Duration::from_secs(3)),
            ..Faults::default()
        });
        let started = Instant::now();
        let err = connection(&fv, base, "{b}.auth.token=t&{b}.request_timeout=200ms")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{base}: {err}");
        assert!(started.elapsed() < Duration::from_secs(2), "{base}");
    }
}

#[tokio::test]
async fn approle_and_kubernetes_logins() {
    observes!(
        "vault.auth.role_id",
        "vault.auth.secret_id",
        "vault.auth.mount",
        "vault.auth.role",
        "vault.auth.jwt_path",
        "envelope.vault.auth.role_id",
        "envelope.vault.auth.secret_id",
        "envelope.vault.auth.mount",
        "envelope.vault.auth.role",
        "envelope.vault.auth.jwt_path"
    );
    let dir = tempfile::tempdir().unwrap();
    let jwt = dir.path().join("jwt");
    std::fs::write(&jwt, "header.payload.sig\n").unwrap();
    for base in ["vault", "envelope.vault"] {
        let fv = FakeVault::start().await;
        let s = connection(
            &fv,
            base,
            "{b}.auth.method=approle&{b}.auth.role_id=role-1&{b}.auth.secret_id=secret-1&{b}.auth.mount=ar",
        )
        .await
        .unwrap();
        use_it(&s).await;
        let login = &fv.api_requests("auth/ar/login")[0];
        let body: serde_json::Value = serde_json::from_slice(&login.body).unwrap();
        assert_eq!(
            body,
            json!({ "role_id": "role-1", "secret_id": "secret-1" })
        );
        assert!(
            fv.requests()
                .iter()
                .any(|r| r.header("x-vault-token") == Some("fake-login-1")),
            "{base}: the login's token is used"
        );
        let fv = FakeVault::start().await;
        connection(
            &fv,
            base,
            &format!(
                "{{b}}.auth.method=kubernetes&{{b}}.auth.role=payments&{{b}}.auth.jwt_path={}",
                jwt.display()
            ),
        )
        .await
        .unwrap();
        let login = &fv.api_requests("auth/kubernetes/login")[0];
        let body: serde_json::Value = serde_json::from_slice(&login.body).unwrap();
        assert_eq!(
            body,
            json!({ "role": "payments", "jwt": "header.payload.sig" }),
            "{base}"
        );
    }
}

#[tokio::test]
async fn renew_fraction_sets_when_the_token_is_renewed() {
    observes!("vault.renew_fraction", "envelope.vault.renew_fraction");
    for base in ["vault", "envelope.vault"] {
        for (fraction, renewed) in [("0.1", true), ("0.9", false)] {
            let fv = FakeVault::start().await;
            fv.set_lease(Lease {
                ttl: 3,
                renewable: true,
            });
            let _s = connection(
                &fv,
                base,
                &format!("{{b}}.auth.token=t&{{b}}.renew_fraction={fraction}"),
            )
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(1200)).await;
            let n = fv.count("renew-self");
            assert_eq!(n > 0, renewed, "{base} {fraction}: {n} renewals");
        }
    }
}

#[tokio::test]
async fn min_relogin_interval_limits_logins_after_rejected_tokens() {
    observes!(
        "vault.min_relogin_interval",
        "envelope.vault.min_relogin_interval"
    );
    for base in ["vault", "envelope.vault"] {
        for (interval, relogins) in [("1h", 1), ("1ms", 2)] {
            let fv = FakeVault::start().await;
            let s = connection(
                &fv,
                base,
                &format!(
                    "{{b}}.auth.method=approle&{{b}}.auth.role_id=r&{{b}}.auth.secret_id=s&{{b}}.min_relogin_interval={interval}"
                ),
            )
            .await
            .unwrap();
            let logins_at_build = fv.count("/login");
            fv.reject_tokens(true);
            let _ = s.store().put("x", "1").await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = s.store().put("y", "2").await;
            let n = fv.count("/login") - logins_at_build;
            assert_eq!(n, relogins, "{base} {interval}");
        }
    }
}

#[tokio::test]
async fn tls_material_is_loaded_into_the_client() {
    observes!(
        "vault.client_cert",
        "vault.client_key",
        "envelope.vault.client_cert",
        "envelope.vault.client_key"
    );
    // The certificate and key reach the TLS client: a pair that is not PEM fails the build
    // naming them, where no pair builds. (A server that verifies client certificates is the
    // backend crate's test.)
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("client.pem");
    let key = dir.path().join("client.key");
    std::fs::write(&cert, "not a certificate\n").unwrap();
    std::fs::write(&key, "not a key\n").unwrap();
    for base in ["vault", "envelope.vault"] {
        let fv = FakeVault::start().await;
        connection(&fv, base, "{b}.auth.token=t").await.unwrap();
        let err = connection(
            &fv,
            base,
            &format!(
                "{{b}}.auth.token=t&{{b}}.client_cert={}&{{b}}.client_key=file:{}",
                cert.display(),
                key.display()
            ),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{base}: {err}");
        assert!(
            err.to_string().contains("client certificate"),
            "{base}: {err}"
        );
    }
}

#[tokio::test]
async fn a_ca_file_is_trusted() {
    observes!("vault.ca_cert", "envelope.vault.ca_cert");
    // A file that is no certificate fails the build naming it; the real TLS handshake with
    // a CA file is tests/vault.rs' `tls_with_a_ca_file`.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate\n").unwrap();
    for base in ["vault", "envelope.vault"] {
        let fv = FakeVault::start().await;
        let err = connection(
            &fv,
            base,
            &format!("{{b}}.auth.token=t&{{b}}.ca_cert={}", ca.display()),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{base}: {err}");
        assert!(err.to_string().contains("CA certificate"), "{base}: {err}");
    }
}

// ---------------------------------------------------------------------------------------------
// vault store options

#[tokio::test]
async fn mount_prefix_kv_version_and_field_choose_the_paths() {
    observes!(
        "vault.mount",
        "vault.prefix",
        "vault.kv_version",
        "vault.field"
    );
    let fv = FakeVault::start().await;
    let s = open(&format!(
        "vault+http://{}/kv1-app/team/x?auth.token=t&kv_version=1",
        fv.authority()
    ))
    .await;
    s.store().put("db", "pw").await.unwrap();
    assert!(
        fv.data("kv1-app/team/x/db").is_some(),
        "{:?}",
        fv.requests()
    );
    assert_eq!(
        fv.count("/v1/kv1-app/team/x/db"),
        1,
        "KV v1 paths have no data/"
    );
    let s = open(&format!(
        "vault+http://{}/secret/team?auth.token=t&field=password",
        fv.authority()
    ))
    .await;
    fv.seed(
        "secret/team/db",
        json!({ "username": "app", "password": "pw-1" }),
    );
    let v = s.store().get_value("db").await.unwrap();
    assert_eq!(v.expose_str().unwrap(), "pw-1");
    assert_eq!(fv.count("/v1/secret/data/team/db"), 1);
}

#[tokio::test]
async fn remove_mode_chooses_soft_delete_or_destroy() {
    observes!("vault.remove_mode");
    for (mode, path) in [
        ("soft_delete", "secret/data/a"),
        ("destroy_all", "secret/metadata/a"),
    ] {
        let fv = FakeVault::start().await;
        seeded(&fv, &["a"]);
        let s = open(&uri(&fv, &format!("remove_mode={mode}"))).await;
        s.store().delete("a").await.unwrap();
        let deletes: Vec<String> = fv
            .requests()
            .into_iter()
            .filter(|r| r.method == "DELETE")
            .map(|r| r.path)
            .collect();
        assert_eq!(deletes, [format!("/v1/{path}")], "{mode}");
    }
}

// ---------------------------------------------------------------------------------------------
// cache: reports of refused credentials

/// A Vault store opened with `query`, the key `db` seeded, read once (cached); returns the
/// stack and the version it served.
async fn served(fv: &FakeVault, query: &str) -> (Stack, String) {
    seeded(fv, &["db"]);
    let s = open(&uri(fv, query)).await;
    let key = kms::KeyName::new("db").unwrap();
    let version = s.store().get(&key).await.unwrap().meta.version.unwrap();
    (s, version.to_string())
}

#[tokio::test]
async fn rejection_rate_limit_bounds_forced_refreshes() {
    observes!("cache.rejection_rate_limit");
    let key = kms::KeyName::new("db").unwrap();
    for (query, second) in [
        (
            "cache.ttl=1h&cache.rejection_retry_budget=0s&cache.rejection_rate_limit=1h",
            kms::cache::Rejection::RateLimited,
        ),
        (
            "cache.ttl=1h&cache.rejection_retry_budget=0s&cache.rejection_rate_limit=1ms",
            kms::cache::Rejection::StillRejected,
        ),
    ] {
        let fv = FakeVault::start().await;
        let (s, version) = served(&fv, query).await;
        let cache = s.cache().unwrap();
        // The backend still answers the refused version: one read, then it is cached again.
        assert_eq!(
            cache.report_rejected(&key, &version).await,
            kms::cache::Rejection::StillRejected
        );
        s.store().get(&key).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let before = reads(&fv);
        assert_eq!(
            cache.report_rejected(&key, &version).await,
            second,
            "{query}"
        );
        let forced = usize::from(second == kms::cache::Rejection::StillRejected);
        assert_eq!(reads(&fv) - before, forced, "{query}");
    }
}

#[tokio::test]
async fn rejection_retry_budget_keeps_reading_until_the_backend_moves() {
    observes!("cache.rejection_retry_budget");
    let key = kms::KeyName::new("db").unwrap();
    for (query, want) in [
        (
            "cache.ttl=1h&cache.rejection_retry_budget=0s",
            kms::cache::Rejection::StillRejected,
        ),
        (
            "cache.ttl=1h&cache.rejection_retry_budget=1m",
            kms::cache::Rejection::Refreshed,
        ),
    ] {
        let fv = FakeVault::start().await;
        let (s, version) = served(&fv, query).await;
        let report = tokio::spawn({
            let cache = s.cache().unwrap().clone();
            let (key, version) = (key.clone(), version.clone());
            async move { cache.report_rejected(&key, &version).await }
        });
        // The rotation lands below the cache a moment after the report.
        tokio::time::sleep(Duration::from_millis(300)).await;
        fv.seed("secret/db", json!({ "value": "rotated" }));
        assert_eq!(report.await.unwrap(), want, "{query}");
    }
}
