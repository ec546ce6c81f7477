//! The read index and the eviction policy (moka) agree, in the windows a thread interleaving
//! can open between them: moka calls its eviction listener right after it removed a slot, on
//! whichever thread runs its housekeeping, so a reload may land in between. These tests put
//! the cache in the state that thread leaves between the two steps, deterministically.

use std::collections::BTreeMap;

use kms_core::{MemoryStore, SecretValue};

use super::*;
use crate::settings::Capacity;

fn core() -> Arc<Core> {
    Core::new(
        Arc::new(MemoryStore::new()),
        &Settings {
            capacity: Capacity::Entries(8),
            ..Settings::default()
        },
    )
}

fn found(v: &str) -> Answer {
    Answer::Found(StoredSecret::new(SecretValue::from(v)))
}

/// (key, id) of every entry hits can read.
fn indexed(core: &Core) -> BTreeMap<String, u64> {
    core.index
        .pin()
        .iter()
        .map(|(k, e)| (k.as_str().to_owned(), e.id))
        .collect()
}

/// (key, id) of every slot moka counts against the capacity.
fn tracked(core: &Core) -> BTreeMap<String, u64> {
    core.policy.settle();
    core.policy
        .slots()
        .into_iter()
        .map(|(k, id)| (k.as_str().to_owned(), id))
        .collect()
}

/// What moka's eviction listener does once it runs for the slot `id` of `key`.
fn listener_runs(core: &Core, key: &KeyName, id: u64) {
    let _ = core.index.pin().remove_if(key, |_, e| e.id == id);
}

/// moka evicted the slot of `k` (it is gone from moka) and its listener has not run yet when
/// a reload of `k`, of the same weight, is inserted; then the listener runs. An entry served
/// without a slot is served beyond the capacity; a slot without an entry counts an entry
/// nobody can read. Either way the two disagree: they must not, before or after the listener.
#[test]
fn a_reload_racing_an_eviction_leaves_index_and_policy_agreeing() {
    let core = core();
    let k = KeyName::new("k").unwrap();
    let now = core.clock.now();
    core.insert(&k, found("v1"), now, Duration::from_secs(60));
    let old = core.index.pin().get(&k).unwrap().id;
    assert_eq!(indexed(&core), tracked(&core));

    // moka drops the slot (as its size eviction does, before calling the listener).
    core.policy.remove(&k);
    core.insert(&k, found("v2"), now, Duration::from_secs(60));
    assert_eq!(indexed(&core), tracked(&core), "before the listener ran");
    listener_runs(&core, &k, old);
    assert_eq!(indexed(&core), tracked(&core), "after the listener ran");
}

/// The same race left to the threads: capacity 8, 24 keys, 4 threads reloading (under the
/// flight lock, as loads do) while another settles moka (as `stats()` does, running evictions
/// and their listener on its thread). After settling, index and moka agree and hits can read
/// no more entries than the capacity.
#[test]
fn index_and_policy_agree_after_churn() {
    let core = core();
    let keys: Vec<KeyName> = (0..24)
        .map(|i| KeyName::new(format!("churn/{i}")).unwrap())
        .collect();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                core.policy.settle();
            }
        });
        let loaders: Vec<_> = (0..4)
            .map(|t| {
                let (core, keys) = (&core, &keys);
                s.spawn(move || {
                    for round in 0..20_000usize {
                        let k = &keys[(round * 7 + t * 5) % keys.len()];
                        let _flights = core.flights.lock();
                        core.insert(k, found("v"), core.clock.now(), Duration::from_secs(60));
                    }
                })
            })
            .collect();
        for loader in loaders {
            loader.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
    let tracked = tracked(&core);
    assert_eq!(indexed(&core), tracked);
    assert!(tracked.len() <= 8, "{} entries", tracked.len());
}

/// The marks failed writes leave are forgotten once over, even when nothing reads the keys:
/// writes of ever new keys failing for hours keep only the last load timeout's marks.
#[test]
fn failed_write_marks_do_not_pile_up() {
    let (clock, time) = quanta::Clock::mock();
    let core = Core::new(
        Arc::new(MemoryStore::new()),
        &Settings {
            clock: Some(clock),
            load_timeout: Duration::from_secs(30),
            ..Settings::default()
        },
    );
    for i in 0..1000 {
        core.unsettle(&KeyName::new(format!("k/{i}")).unwrap(), Fallback::Withhold);
    }
    assert_eq!(core.unsettled.lock().len(), 1000);
    time.increment(Duration::from_secs(120));
    core.unsettle(&KeyName::new("k/last").unwrap(), Fallback::Drop);
    assert_eq!(core.unsettled.lock().len(), 1);
}
