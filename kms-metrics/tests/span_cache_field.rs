//! The `kms.get` span declares a `cache` field that a store below records into through
//! `tracing::Span::current()` (kms-cache records "hit", "miss" or "stale").

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use kms_core::{
    Capabilities, KeyName, KeyPrefix, KeyStore, KeyStoreExt, MemoryStore, Result, SecretMeta,
    SecretValue, StoreBuilder, StoredSecret, async_trait,
};
use kms_metrics::KmsMetrics;
use kms_metrics::prometheus_client::registry::Registry;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Records `cache = "hit"` into the current span on every `get`, as kms-cache does.
#[derive(Debug)]
struct MarksHits(MemoryStore);

impl fmt::Display for MarksHits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MarksHits({})", self.0)
    }
}

#[async_trait]
impl KeyStore for MarksHits {
    fn backend(&self) -> &'static str {
        self.0.backend()
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    async fn get(&self, key: &KeyName) -> Result<StoredSecret> {
        tracing::Span::current().record("cache", "hit");
        self.0.get(key).await
    }
    async fn store(&self, key: &KeyName, value: SecretValue) -> Result<SecretMeta> {
        self.0.store(key, value).await
    }
    async fn remove(&self, key: &KeyName) -> Result<()> {
        self.0.remove(key).await
    }
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<KeyName>> {
        self.0.list(prefix).await
    }
    async fn health(&self) -> Result<()> {
        self.0.health().await
    }
}

/// Field name and value, as recorded.
type Fieldset = Vec<(String, String)>;

/// Every span's name and the fields recorded into it (at creation or later), by span id.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<HashMap<u64, (&'static str, Fieldset)>>>);

struct Fields<'a>(&'a mut Fieldset);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = Vec::new();
        attrs.record(&mut Fields(&mut fields));
        self.0
            .lock()
            .unwrap()
            .insert(id.into_u64(), (attrs.metadata().name(), fields));
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some((_, fields)) = self.0.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(fields));
        }
    }
}

impl Spans {
    fn named(&self, name: &str) -> Vec<Fieldset> {
        let mut spans: Vec<_> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|(id, s)| (*id, s.clone()))
            .collect();
        spans.sort_by_key(|(id, _)| *id);
        spans
            .into_iter()
            .filter(|(_, (n, _))| *n == name)
            .map(|(_, (_, fields))| fields)
            .collect()
    }
}

fn has(fields: &[(String, String)], name: &str, value: &str) -> bool {
    fields.iter().any(|(n, v)| n == name && v == value)
}

#[tokio::test]
async fn a_store_below_records_the_cache_outcome_into_the_get_span() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let metrics = KmsMetrics::register(&mut Registry::default());
    let store = StoreBuilder::new(MarksHits(MemoryStore::new()))
        .layer(metrics.layer().health_probe(None))
        .build();
    store.put("db/password", "s3cret").await.unwrap();
    store.get_value("db/password").await.unwrap();

    let gets = spans.named("kms.get");
    assert_eq!(gets.len(), 1);
    let get = &gets[0];
    assert!(has(get, "cache", "hit"), "{get:?}");
    assert!(has(get, "outcome", "success"), "{get:?}");
    assert!(has(get, "backend", "memory"), "{get:?}");
    assert!(get.iter().any(|(n, _)| n == "latency_us"), "{get:?}");
    // Only `kms.get` has the field; the store span was not touched.
    let stores = spans.named("kms.store");
    assert_eq!(stores.len(), 1);
    assert!(!stores[0].iter().any(|(n, _)| n == "cache"), "{stores:?}");
}

/// Over the real cache: the miss goes through the inner `get`, the hits through `get_now`
/// (answered at once); both are measured, counted and traced with their cache outcome.
#[tokio::test]
async fn over_the_cache_hits_are_answered_at_once_and_still_measured() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let backend = MemoryStore::new();
    backend.put("db/password", "s3cret").await.unwrap();
    let store = StoreBuilder::new(backend)
        .layer(metrics.layer().health_probe(None))
        .layer(kms_cache::CacheLayer::new())
        .build();
    for _ in 0..3 {
        store.get_value("db/password").await.unwrap();
    }
    assert!(store.get_value("nope").await.is_err());

    let gets = spans.named("kms.get");
    assert_eq!(gets.len(), 4);
    assert!(has(&gets[0], "cache", "miss"), "{:?}", gets[0]);
    for hit in &gets[1..3] {
        assert!(has(hit, "cache", "hit"), "{hit:?}");
        assert!(has(hit, "outcome", "success"), "{hit:?}");
        assert!(hit.iter().any(|(n, _)| n == "latency_us"), "{hit:?}");
    }
    // Not found is an answer, not a failure.
    assert!(has(&gets[3], "outcome", "not_found"), "{:?}", gets[3]);

    let mut text = String::new();
    kms_metrics::prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let line = |series: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(series).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert_eq!(
        line(
            r#"kms_key_operations_total{operation="get",backend="memory",store="memory",status="success"}"#
        ),
        "3"
    );
    assert_eq!(
        line(
            r#"kms_key_operations_total{operation="get",backend="memory",store="memory",status="not_found"}"#
        ),
        "1"
    );
    assert_eq!(
        line(
            r#"kms_key_operation_duration_seconds_count{operation="get",backend="memory",store="memory"}"#
        ),
        "4"
    );
}

/// `get_now` through the layer (what a decorator stacked above it calls first) answers a
/// cache hit at once and counts it exactly as a `get` hit: the same series, latency and span
/// with its cache outcome, never in flight. Without an answer at once nothing is counted.
#[tokio::test]
async fn get_now_through_the_layer_counts_a_hit_as_a_get() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut registry = Registry::default();
    let metrics = KmsMetrics::register(&mut registry);
    let backend = MemoryStore::new();
    backend.put("db/password", "s3cret").await.unwrap();
    let store = StoreBuilder::new(backend)
        .layer(metrics.layer())
        .layer(kms_cache::CacheLayer::new())
        .build();
    let key = KeyName::new("db/password").unwrap();
    assert!(store.get_now(&key).is_none(), "not cached yet");
    store.get(&key).await.unwrap(); // the miss fills the cache
    let hit = store.get_now(&key).expect("a hit answers at once").unwrap();
    assert_eq!(hit.value.expose_secret(), b"s3cret");

    let answered: Vec<_> = spans
        .named("kms.get")
        .into_iter()
        .filter(|s| s.iter().any(|(n, _)| n == "outcome"))
        .collect();
    assert_eq!(answered.len(), 2, "{answered:?}");
    assert!(has(&answered[0], "cache", "miss"), "{:?}", answered[0]);
    assert!(has(&answered[1], "cache", "hit"), "{:?}", answered[1]);
    assert!(has(&answered[1], "outcome", "success"), "{:?}", answered[1]);
    assert!(
        answered[1].iter().any(|(n, _)| n == "latency_us"),
        "{:?}",
        answered[1]
    );

    let mut text = String::new();
    kms_metrics::prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let line = |series: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(series).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert_eq!(
        line(
            r#"kms_key_operations_total{operation="get",backend="memory",store="memory",status="success"}"#
        ),
        "2"
    );
    assert_eq!(
        line(
            r#"kms_key_operation_duration_seconds_count{operation="get",backend="memory",store="memory"}"#
        ),
        "2"
    );
    assert_eq!(
        line(r#"kms_key_operations_in_flight{operation="get",backend="memory",store="memory"}"#),
        "0"
    );
}
