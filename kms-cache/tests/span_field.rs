//! `get` records its cache outcome (`hit`, `miss`, `stale`) into the `cache` field of the
//! current span, as declared by the metrics decorator's `kms.get` span.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kms_cache::CacheLayer;
use kms_core::fault::FaultStore;
use kms_core::{ErrorKind, KeyName, KeyStore, KeyStoreExt, MemoryStore, Operation, StoreBuilder};
use tracing::field::{Empty, Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Instrument, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Every `(span name, field, value)` recorded after a span was created.
#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<(String, String, String)>>>);

impl Recorded {
    fn take(&self) -> Vec<(String, String, String)> {
        std::mem::take(&mut self.0.lock().unwrap())
    }

    /// The values recorded into `cache` fields, in order.
    fn cache_values(&self) -> Vec<(String, String)> {
        self.take()
            .into_iter()
            .filter(|(_, field, _)| field == "cache")
            .map(|(span, _, value)| (span, value))
            .collect()
    }
}

struct Capture(Recorded);

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, _: &Attributes<'_>, _: &Id, _: Context<'_, S>) {}

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let name = ctx.span(id).map_or("?", |s| s.name()).to_owned();
        let mut fields = Vec::new();
        values.record(&mut Fields(&mut fields));
        let mut recorded = self.0.0.lock().unwrap();
        for (field, value) in fields {
            recorded.push((name.clone(), field, value));
        }
    }
}

fn key(s: &str) -> KeyName {
    KeyName::new(s).unwrap()
}

fn capture() -> (Recorded, tracing::subscriber::DefaultGuard) {
    let recorded = Recorded::default();
    let subscriber = tracing_subscriber::registry().with(Capture(recorded.clone()));
    (recorded, tracing::subscriber::set_default(subscriber))
}

/// A `get` inside a span shaped like the metrics decorator's.
async fn get_in_span(store: &Arc<dyn KeyStore>, k: &KeyName) -> kms_core::Result<()> {
    let span = tracing::info_span!("kms.get", operation = "get", cache = Empty);
    store.get(k).instrument(span).await.map(|_| ())
}

#[tokio::test(start_paused = true)]
async fn get_records_hit_miss_and_stale_into_the_parent_span() {
    let (recorded, _guard) = capture();
    let backend = MemoryStore::new();
    backend.put("k", "v").await.unwrap();
    let backend = FaultStore::new(backend);
    let faults = backend.handle();
    let (clock, time) = kms_cache::quanta::Clock::mock();
    let store = StoreBuilder::new(backend)
        .layer(
            CacheLayer::new()
                .clock(clock)
                .ttl(Duration::from_secs(60))
                .jitter(0.0)
                .stale_if_error(Duration::from_secs(120)),
        )
        .build();
    let k = key("k");

    get_in_span(&store, &k).await.unwrap();
    get_in_span(&store, &k).await.unwrap();
    let span = |v: &str| ("kms.get".to_owned(), v.to_owned());
    assert_eq!(recorded.cache_values(), [span("miss"), span("hit")]);

    // Expired, and the backend is down: the stale value is served.
    time.increment(Duration::from_secs(61));
    faults.fail_always(Operation::Get, ErrorKind::Unavailable);
    get_in_span(&store, &k).await.unwrap();
    assert_eq!(recorded.cache_values(), [span("stale")]);

    // Past the stale window: the error goes through, and it was a miss.
    time.increment(Duration::from_secs(200));
    let err = get_in_span(&store, &k).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(recorded.cache_values(), [span("miss")]);
}

#[tokio::test(start_paused = true)]
async fn a_negative_hit_is_a_hit_and_a_load_of_a_missing_key_a_miss() {
    let (recorded, _guard) = capture();
    let store = StoreBuilder::new(MemoryStore::new())
        .layer(CacheLayer::new().negative_ttl(Duration::from_secs(5)))
        .build();
    let k = key("absent");
    let span = |v: &str| ("kms.get".to_owned(), v.to_owned());

    for _ in 0..2 {
        let err = get_in_span(&store, &k).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
    assert_eq!(recorded.cache_values(), [span("miss"), span("hit")]);
}

#[tokio::test(start_paused = true)]
async fn spans_without_the_field_and_gets_outside_any_span_record_nothing() {
    let (recorded, _guard) = capture();
    let store = StoreBuilder::new(MemoryStore::new())
        .layer(CacheLayer::new())
        .build();
    store.put("k", "v").await.unwrap();
    let k = key("k");

    store.get(&k).await.unwrap();
    store.get(&k).await.unwrap();
    let other = tracing::info_span!("app.request", user = "u");
    store.get(&k).instrument(other).await.unwrap();
    assert!(recorded.take().is_empty());
}

#[tokio::test(start_paused = true)]
async fn gets_work_with_no_subscriber_installed() {
    let store = StoreBuilder::new(MemoryStore::new())
        .layer(CacheLayer::new())
        .build();
    store.put("k", "v").await.unwrap();
    let k = key("k");
    get_in_span(&store, &k).await.unwrap();
    get_in_span(&store, &k).await.unwrap();
}
