//! [`Selector`]: which target of a failover store serves reads, with hysteresis. A leaf: it
//! knows targets only by index, and time only as the instants it is given.

use std::time::Duration;

use tokio::time::Instant;

/// When a target counts as down and when it may serve again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Policy {
    /// Consecutive unhealthy failures (of calls or probes) that mark a target down.
    pub(crate) fail_after: u32,
    /// Consecutive successful probes or calls a down target needs before it serves again.
    pub(crate) fail_back_after: u32,
    /// How long a down target must go without any failure before it serves again.
    pub(crate) hold_down: Duration,
}

#[derive(Clone, Debug, Default)]
struct Health {
    failures: u32,
    successes: u32,
    last_failure: Option<Instant>,
    down: bool,
}

/// The health of each target (in priority order: 0 is the primary) and the one serving.
#[derive(Clone, Debug, Default)]
pub(crate) struct Selector {
    health: Vec<Health>,
    active: usize,
}

impl Selector {
    /// Adds a target at the lowest priority.
    pub(crate) fn add_target(&mut self) {
        self.health.push(Health::default());
    }

    /// How many targets there are.
    pub(crate) fn len(&self) -> usize {
        self.health.len()
    }

    /// The target serving reads.
    pub(crate) fn active(&self) -> usize {
        self.active
    }

    /// Whether target `i` is down.
    pub(crate) fn is_down(&self, i: usize) -> bool {
        self.health.get(i).is_some_and(|h| h.down)
    }

    /// Target `i` failed as unhealthy (unavailable, timed out, rate limited, circuit open).
    pub(crate) fn failure(&mut self, i: usize, now: Instant, policy: &Policy) {
        let Some(h) = self.health.get_mut(i) else {
            return;
        };
        h.successes = 0;
        h.failures = h.failures.saturating_add(1);
        h.last_failure = Some(now);
        if h.failures >= policy.fail_after {
            h.down = true;
        }
    }

    /// Target `i` is known down from outside (its breaker is open, its monitor says down).
    pub(crate) fn mark_down(&mut self, i: usize, now: Instant) {
        let Some(h) = self.health.get_mut(i) else {
            return;
        };
        h.successes = 0;
        h.last_failure = Some(now);
        h.down = true;
    }

    /// Target `i` answered (a probe or a call). A down target serves again after
    /// `fail_back_after` successes in a row with no failure for `hold_down`.
    pub(crate) fn success(&mut self, i: usize, now: Instant, policy: &Policy) {
        let Some(h) = self.health.get_mut(i) else {
            return;
        };
        h.failures = 0;
        h.successes = h.successes.saturating_add(1);
        let quiet = h
            .last_failure
            .is_none_or(|at| now.saturating_duration_since(at) >= policy.hold_down);
        if h.down && h.successes >= policy.fail_back_after && quiet {
            h.down = false;
        }
    }

    /// Makes the first target that is not down the active one (the current one stays when
    /// all are down). Returns `(from, to)` when it changed.
    pub(crate) fn reselect(&mut self) -> Option<(usize, usize)> {
        let best = self.health.iter().position(|h| !h.down)?;
        if best == self.active {
            return None;
        }
        let from = std::mem::replace(&mut self.active, best);
        Some((from, best))
    }

    /// The order a read tries the targets in: the active one, then the others that are not
    /// down in priority order (all of them, in priority order, when every target is down).
    pub(crate) fn read_order(&self) -> Vec<usize> {
        let mut order = vec![self.active];
        order.extend((0..self.health.len()).filter(|&i| i != self.active && !self.health[i].down));
        if order.len() == 1 && self.health[self.active].down {
            order.extend((0..self.health.len()).filter(|&i| i != self.active));
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        fail_after: 2,
        fail_back_after: 3,
        hold_down: Duration::from_secs(10),
    };

    fn two() -> Selector {
        let mut s = Selector::default();
        s.add_target();
        s.add_target();
        s
    }

    #[test]
    fn fails_over_after_repeated_failures_or_at_once_when_told() {
        let t0 = Instant::now();
        let mut s = two();
        s.failure(0, t0, &POLICY);
        assert_eq!(s.reselect(), None);
        s.failure(0, t0, &POLICY);
        assert_eq!(s.reselect(), Some((0, 1)));
        assert_eq!(s.read_order(), vec![1]);

        let mut s = two();
        s.mark_down(0, t0);
        assert_eq!(s.reselect(), Some((0, 1)));
        // Everything down: the active target stays, and a read tries every one.
        s.mark_down(1, t0);
        assert_eq!(s.reselect(), None);
        assert_eq!(s.read_order(), vec![1, 0]);
    }

    #[test]
    fn fails_back_only_after_successes_in_a_row_and_a_quiet_hold_down() {
        let t0 = Instant::now();
        let mut s = two();
        s.mark_down(0, t0);
        s.reselect();
        let at = |secs| t0 + Duration::from_secs(secs);
        // Three successes, but within the hold-down: still down.
        for t in 1..=3 {
            s.success(0, at(t), &POLICY);
        }
        assert!(s.is_down(0));
        // A flap resets the count and the hold-down.
        s.failure(0, at(9), &POLICY);
        for t in 11..=18 {
            s.success(0, at(t), &POLICY);
        }
        assert!(s.is_down(0), "hold-down runs from the last failure");
        s.success(0, at(19), &POLICY);
        assert!(!s.is_down(0));
        assert_eq!(s.reselect(), Some((1, 0)));
        assert_eq!(s.read_order(), vec![0, 1]);
    }
}
