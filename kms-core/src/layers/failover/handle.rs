//! [`FailoverHandle`]: what a failover store shares with whoever watches it (which target
//! serves, how many switches, hooks for metrics), and the state behind it.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::time::Instant;

use super::selector::{Policy, Selector};

type SwitchHook = Arc<dyn Fn(&str, &str) + Send + Sync>;
type BehindHook = Arc<dyn Fn(&str) + Send + Sync>;

/// The state of one failover store, shared by the store, its layer and its handles.
pub(crate) struct Shared {
    pub(crate) names: Mutex<Vec<Arc<str>>>,
    selector: Mutex<Selector>,
    pub(crate) policy: Mutex<Policy>,
    switch_hooks: Mutex<Vec<SwitchHook>>,
    behind_hooks: Mutex<Vec<BehindHook>>,
    failovers: AtomicU64,
    /// A background probe is running.
    pub(crate) probing: AtomicBool,
    /// When the last probe started.
    pub(crate) last_probe: Mutex<Option<Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(primary: Arc<str>, policy: Policy) -> Self {
        let mut selector = Selector::default();
        selector.add_target();
        Self {
            names: Mutex::new(vec![primary]),
            selector: Mutex::new(selector),
            policy: Mutex::new(policy),
            switch_hooks: Mutex::new(Vec::new()),
            behind_hooks: Mutex::new(Vec::new()),
            failovers: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            last_probe: Mutex::new(None),
        }
    }

    pub(crate) fn add_target(&self, name: Arc<str>) {
        lock(&self.names).push(name);
        lock(&self.selector).add_target();
    }

    pub(crate) fn set_primary_name(&self, name: Arc<str>) {
        lock(&self.names)[0] = name;
    }

    pub(crate) fn policy(&self) -> Policy {
        *lock(&self.policy)
    }

    fn name(&self, i: usize) -> Arc<str> {
        lock(&self.names)
            .get(i)
            .cloned()
            .unwrap_or_else(|| Arc::from("?"))
    }

    /// Runs `f` on the selector, then switches if it says so (hooks run outside the lock).
    fn update(&self, f: impl FnOnce(&mut Selector, &Policy)) {
        let policy = self.policy();
        let switched = {
            let mut selector = lock(&self.selector);
            f(&mut selector, &policy);
            selector.reselect()
        };
        if let Some((from, to)) = switched {
            self.failovers.fetch_add(1, Ordering::Relaxed);
            let (from, to) = (self.name(from), self.name(to));
            let hooks = lock(&self.switch_hooks).clone();
            for hook in hooks {
                hook(&from, &to);
            }
        }
    }

    pub(crate) fn failure(&self, i: usize) {
        self.update(|s, p| s.failure(i, Instant::now(), p));
    }

    pub(crate) fn success(&self, i: usize) {
        self.update(|s, p| s.success(i, Instant::now(), p));
    }

    /// Marks the targets `down` says are down (breaker open, signal down).
    pub(crate) fn refresh(&self, down: impl Fn(usize) -> bool) {
        self.update(|s, _| {
            let now = Instant::now();
            for i in 0..s.len() {
                if down(i) {
                    s.mark_down(i, now);
                }
            }
        });
    }

    pub(crate) fn read_order(&self) -> Vec<usize> {
        lock(&self.selector).read_order()
    }

    pub(crate) fn active(&self) -> usize {
        lock(&self.selector).active()
    }

    pub(crate) fn is_down(&self, i: usize) -> bool {
        lock(&self.selector).is_down(i)
    }

    pub(crate) fn any_down(&self) -> bool {
        let s = lock(&self.selector);
        (0..s.len()).any(|i| s.is_down(i))
    }

    pub(crate) fn behind(&self, i: usize) {
        let name = self.name(i);
        let hooks = lock(&self.behind_hooks).clone();
        for hook in hooks {
            hook(&name);
        }
    }
}

/// Watches a failover store: which target serves reads, how many times it switched, and
/// hooks the metrics crate uses for `<p>_failover_active{store,target}`,
/// `<p>_failovers_total{store}` and the count of answers skipped as behind. Cheap to clone;
/// get one from [`FailoverLayer::handle`](crate::FailoverLayer::handle).
#[derive(Clone)]
pub struct FailoverHandle {
    pub(crate) shared: Arc<Shared>,
}

impl FailoverHandle {
    /// The targets' names, in priority order (the primary first).
    pub fn targets(&self) -> Vec<String> {
        lock(&self.shared.names)
            .iter()
            .map(|n| n.to_string())
            .collect()
    }

    /// The name of the target serving reads now.
    pub fn active(&self) -> String {
        self.shared.name(self.shared.active()).to_string()
    }

    /// Whether the primary (the only target writes go to) is serving reads: no failover in
    /// effect.
    pub fn on_primary(&self) -> bool {
        self.shared.active() == 0
    }

    /// Whether target `name` is taken as down now.
    pub fn is_down(&self, name: &str) -> bool {
        let names = lock(&self.shared.names).clone();
        names
            .iter()
            .position(|n| &**n == name)
            .is_some_and(|i| self.shared.is_down(i))
    }

    /// How many times the serving target changed (failovers and fail-backs).
    pub fn failovers(&self) -> u64 {
        self.shared.failovers.load(Ordering::Relaxed)
    }

    /// Calls `hook(from, to)` each time the serving target changes. Must not panic or block.
    pub fn on_switch(&self, hook: impl Fn(&str, &str) + Send + Sync + 'static) {
        lock(&self.shared.switch_hooks).push(Arc::new(hook));
    }

    /// Calls `hook(target)` each time a target's answer is skipped because it is older than a
    /// version already returned (see [`FailoverLayer::floors`](crate::FailoverLayer::floors)).
    /// Must not panic or block.
    pub fn on_behind(&self, hook: impl Fn(&str) + Send + Sync + 'static) {
        lock(&self.shared.behind_hooks).push(Arc::new(hook));
    }
}

impl fmt::Debug for FailoverHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailoverHandle")
            .field("targets", &self.targets())
            .field("active", &self.active())
            .field("failovers", &self.failovers())
            .finish()
    }
}
