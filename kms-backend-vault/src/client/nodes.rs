//! The nodes of a Vault cluster as the client sees them: their addresses, what the last
//! request or health probe said about each, and the order a request tries them in.
//!
//! A leaf: it knows nothing of requests or tokens. One address is a cluster of one, and then
//! every order is that one node.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use reqwest::Url;

/// Nothing known yet (treated as serving).
const UNKNOWN: u8 = 0;
/// `sys/health` said active (200).
const ACTIVE: u8 = 1;
/// `sys/health` said standby (429) or read standby (473), or a request succeeded.
const STANDBY: u8 = 2;
/// A request could not connect, timed out or was abandoned, or the probe failed: skipped
/// until a probe says it serves again.
const DOWN: u8 = 3;

/// One node: where it is and what is known about it.
pub(crate) struct Node {
    /// The API base, `<address>/v1`.
    pub(crate) base: Url,
    /// The address as shown in messages (no user info, no `/v1`).
    pub(crate) address: String,
    state: AtomicU8,
}

impl Node {
    /// A node nothing is known about yet.
    pub(crate) fn new(base: Url, address: String) -> Self {
        Self {
            base,
            address,
            state: AtomicU8::new(UNKNOWN),
        }
    }

    /// Whether requests skip it (until a probe says it serves).
    pub(crate) fn is_down(&self) -> bool {
        self.state.load(Ordering::Relaxed) == DOWN
    }

    /// Whether the last probe said it is the active node.
    pub(crate) fn is_active(&self) -> bool {
        self.state.load(Ordering::Relaxed) == ACTIVE
    }

    /// A request to it failed to connect, timed out or was abandoned, or a probe failed.
    pub(crate) fn mark_down(&self) {
        self.state.store(DOWN, Ordering::Relaxed);
    }

    /// It answered a request: serving (an active node stays active).
    pub(crate) fn mark_answered(&self) {
        let _ = self
            .state
            .compare_exchange(DOWN, STANDBY, Ordering::Relaxed, Ordering::Relaxed);
        let _ = self
            .state
            .compare_exchange(UNKNOWN, STANDBY, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// What its `sys/health` said: `Some(true)` active, `Some(false)` a serving standby,
    /// `None` not serving (sealed, unreachable, not initialised).
    pub(crate) fn mark_probed(&self, active: Option<bool>) {
        let state = match active {
            Some(true) => ACTIVE,
            Some(false) => STANDBY,
            None => DOWN,
        };
        self.state.store(state, Ordering::Relaxed);
    }

    /// `"active"`, `"standby"`, `"down"` or `"unknown"`.
    pub(crate) fn state_label(&self) -> &'static str {
        match self.state.load(Ordering::Relaxed) {
            ACTIVE => "active",
            STANDBY => "standby",
            DOWN => "down",
            _ => "unknown",
        }
    }
}

/// Every node of the cluster, in configured order, and a rotating start for reads.
pub(crate) struct Nodes {
    list: Vec<Node>,
    next: AtomicUsize,
}

impl Nodes {
    /// The nodes, in the order configured (non-empty).
    pub(crate) fn new(list: Vec<Node>) -> Self {
        debug_assert!(!list.is_empty());
        Self {
            list,
            next: AtomicUsize::new(0),
        }
    }

    /// All nodes, in configured order.
    pub(crate) fn all(&self) -> &[Node] {
        &self.list
    }

    /// Whether there is more than one node.
    pub(crate) fn is_cluster(&self) -> bool {
        self.list.len() > 1
    }

    /// The order a request tries the nodes in (indexes into [`all`](Self::all)): every node
    /// once, the ones marked down last (tried only when no other node answered).
    ///
    /// - A read starts at a node that rotates with each read, so reads spread over the
    ///   serving nodes (standbys serve reads themselves).
    /// - A write starts at the node the last probe found active (a standby would forward it
    ///   there anyway, one hop later), then the others in configured order.
    pub(crate) fn order(&self, read: bool) -> Vec<usize> {
        let n = self.list.len();
        if n == 1 {
            return vec![0];
        }
        let start = if read {
            self.next.fetch_add(1, Ordering::Relaxed) % n
        } else {
            0
        };
        let mut order: Vec<usize> = (0..n).map(|i| (start + i) % n).collect();
        if !read && let Some(active) = order.iter().position(|&i| self.list[i].is_active()) {
            let i = order.remove(active);
            order.insert(0, i);
        }
        // Stable: serving nodes keep their order, down ones move to the end.
        order.sort_by_key(|&i| self.list[i].is_down());
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Nodes {
        Nodes::new(
            (0..n)
                .map(|i| {
                    let address = format!("http://127.0.0.1:{}", 9000 + i);
                    Node::new(Url::parse(&format!("{address}/v1")).unwrap(), address)
                })
                .collect(),
        )
    }

    #[test]
    fn reads_rotate_and_down_nodes_go_last() {
        let nodes = nodes(3);
        assert_eq!(nodes.order(true), vec![0, 1, 2]);
        assert_eq!(nodes.order(true), vec![1, 2, 0]);
        nodes.all()[2].mark_down();
        assert_eq!(nodes.order(true), vec![0, 1, 2]);
        assert_eq!(nodes.order(true), vec![0, 1, 2]);
        assert_eq!(nodes.order(true), vec![1, 0, 2]);
        nodes.all()[2].mark_answered();
        assert!(!nodes.all()[2].is_down());
    }

    #[test]
    fn writes_start_at_the_active_node() {
        let nodes = nodes(3);
        assert_eq!(nodes.order(false), vec![0, 1, 2]);
        nodes.all()[1].mark_probed(Some(true));
        assert_eq!(nodes.order(false), vec![1, 0, 2]);
        nodes.all()[1].mark_down();
        assert_eq!(nodes.order(false), vec![0, 2, 1]);
        assert_eq!(nodes.all()[1].state_label(), "down");
        let one = self::nodes(1);
        one.all()[0].mark_down();
        assert_eq!(one.order(true), vec![0]);
    }
}
