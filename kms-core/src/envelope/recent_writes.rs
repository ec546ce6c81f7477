//! The ciphertexts of the last few logical writes, so a repeated attempt sends the same bytes.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::key_name::KeyName;
use crate::secret::SecretValue;

/// How many recent writes are remembered: enough for the writes in flight at once in a
/// service; an older write's repeat is sealed again (correct, just not deduplicated).
const REMEMBERED: usize = 32;

/// `(write id, key, sealed value)` of recent writes, newest last. Only ciphertext is kept.
#[derive(Default)]
pub(crate) struct RecentWrites {
    writes: Mutex<VecDeque<(Box<str>, KeyName, SecretValue)>>,
}

impl RecentWrites {
    /// The sealed value an earlier attempt of write `id` sent for `key`.
    pub(crate) fn find(&self, id: &str, key: &KeyName) -> Option<SecretValue> {
        self.lock()
            .iter()
            .rev()
            .find(|(i, k, _)| &**i == id && k == key)
            .map(|(_, _, sealed)| sealed.clone())
    }

    /// Remembers what write `id` sent for `key`, forgetting the oldest beyond [`REMEMBERED`].
    pub(crate) fn remember(&self, id: &str, key: &KeyName, sealed: SecretValue) {
        let mut writes = self.lock();
        writes.retain(|(i, k, _)| !(&**i == id && k == key));
        if writes.len() >= REMEMBERED {
            writes.pop_front();
        }
        writes.push_back((id.into(), key.clone(), sealed));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Box<str>, KeyName, SecretValue)>> {
        // Every change is one push/pop/retain: a panic cannot leave it half-written.
        self.writes.lock().unwrap_or_else(|e| e.into_inner())
    }
}
