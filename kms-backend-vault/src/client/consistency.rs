//! Read-your-writes across a cluster: the newest `X-Vault-Index` this client has seen.
//!
//! OpenBao (2.7 and later) returns `X-Vault-Index` on every answer from a Raft cluster: the
//! storage index the answer reflects. A request carrying `X-Vault-Index` is served by a node
//! only once that node has applied the index; with `X-Vault-Inconsistent:
//! forward-active-node` a standby that is behind forwards the request to the active node
//! instead (without it, OpenBao 2.7 answers HTTP 429 with an empty error list). The active
//! node always has every index. Keeping the newest index of every answer and sending it on
//! every read makes each read reflect at least everything this client has written or read
//! before, whichever node serves it.
//!
//! The header is opaque to clients by contract; OpenBao encodes it as base64 of
//! `{"cluster":"<id>","value":"<raft index>"}`. This leaf compares two indexes by that value
//! when both decode and name the same cluster, and otherwise keeps the one seen last.

use base64::Engine as _;
use parking_lot::Mutex;

/// The response and request header carrying the storage index.
pub(crate) const INDEX_HEADER: &str = "X-Vault-Index";
/// The request header saying what a node behind the index should do.
pub(crate) const INCONSISTENT_HEADER: &str = "X-Vault-Inconsistent";
/// Forward to the active node (which has every index) rather than fail.
pub(crate) const FORWARD_ACTIVE_NODE: &str = "forward-active-node";

/// The newest index seen (none until the server sends one: a dev server or a Vault without
/// the feature never does, and then no header is sent).
#[derive(Default)]
pub(crate) struct ConsistencyIndex {
    newest: Mutex<Option<Seen>>,
}

struct Seen {
    header: String,
    parsed: Option<(String, u64)>,
}

/// `(cluster id, index)` from OpenBao's encoding, if `header` is in it.
fn parse(header: &str) -> Option<(String, u64)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .ok()?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let cluster = json.get("cluster")?.as_str()?.to_owned();
    let value = json.get("value")?;
    let value = match value {
        serde_json::Value::String(s) => s.parse().ok()?,
        other => other.as_u64()?,
    };
    Some((cluster, value))
}

impl ConsistencyIndex {
    /// Records an index a node answered with, if it is newer than the one kept.
    pub(crate) fn observe(&self, header: &str) {
        if header.is_empty() || header.len() > 512 {
            return;
        }
        let parsed = parse(header);
        let mut newest = self.newest.lock();
        let newer = match (&*newest, &parsed) {
            (None, _) => true,
            (
                Some(Seen {
                    parsed: Some((c0, v0)),
                    ..
                }),
                Some((c1, v1)),
            ) if c0 == c1 => v1 > v0,
            (Some(seen), _) => seen.header != header,
        };
        if newer {
            *newest = Some(Seen {
                header: header.to_owned(),
                parsed,
            });
        }
    }

    /// The index to send with a read, if any was seen.
    pub(crate) fn current(&self) -> Option<String> {
        self.newest.lock().as_ref().map(|s| s.header.clone())
    }

    /// The numeric index kept, where the server's encoding is OpenBao's.
    pub(crate) fn value(&self) -> Option<u64> {
        self.newest
            .lock()
            .as_ref()
            .and_then(|s| s.parsed.as_ref().map(|p| p.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(cluster: &str, value: u64) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(format!(r#"{{"cluster":"{cluster}","value":"{value}"}}"#))
    }

    #[test]
    fn keeps_the_newest_index_of_one_cluster() {
        let kept = ConsistencyIndex::default();
        assert_eq!(kept.current(), None);
        kept.observe(&index("c1", 37));
        kept.observe(&index("c1", 40));
        kept.observe(&index("c1", 38));
        assert_eq!(kept.current(), Some(index("c1", 40)));
        assert_eq!(kept.value(), Some(40));
        // Another cluster (rebuilt, restored): the last seen wins.
        kept.observe(&index("c2", 3));
        assert_eq!(kept.value(), Some(3));
        // An encoding this client does not know: kept as the latest, sent back as is.
        kept.observe("opaque-token");
        assert_eq!(kept.current().as_deref(), Some("opaque-token"));
        assert_eq!(kept.value(), None);
        kept.observe("");
        assert_eq!(kept.current().as_deref(), Some("opaque-token"));
    }
}
