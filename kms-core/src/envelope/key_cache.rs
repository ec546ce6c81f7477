//! Data-key caching, as the AWS Encryption SDK's caching CMM does it: a data key is reused for
//! encryption until it reaches a maximum age or a maximum number of uses, and decrypted data
//! keys are remembered for the same maximum age, so most reads and writes cost no provider call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::secret::SecretValue;

/// Limits on how long and how often a data key is reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataKeyCachePolicy {
    /// The longest a data key is used or remembered after it was issued or decrypted.
    pub max_age: Duration,
    /// How many values one data key may encrypt.
    pub max_uses: u64,
    /// How many decrypted data keys are remembered.
    pub max_decrypted: usize,
}

impl Default for DataKeyCachePolicy {
    /// 5 minutes, 10,000 uses, 1,000 decrypted keys.
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(300),
            max_uses: 10_000,
            max_decrypted: 1_000,
        }
    }
}

impl DataKeyCachePolicy {
    /// A policy that never reuses a data key: one provider call per write and per read.
    pub fn disabled() -> Self {
        Self {
            max_age: Duration::ZERO,
            max_uses: 1,
            max_decrypted: 0,
        }
    }
}

struct Current {
    plaintext: SecretValue,
    encrypted: Vec<u8>,
    issued: Instant,
    uses: u64,
}

#[derive(Default)]
struct State {
    current: Option<Current>,
    decrypted: HashMap<Vec<u8>, (SecretValue, Instant)>,
}

/// The cache. All methods take a short lock and never hold it across a provider call.
pub(crate) struct DataKeyCache {
    policy: DataKeyCachePolicy,
    state: Mutex<State>,
}

impl DataKeyCache {
    pub(crate) fn new(policy: DataKeyCachePolicy) -> Self {
        Self {
            policy,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A data key to encrypt one more value with, if the current one is still within limits.
    pub(crate) fn take_for_encrypt(&self) -> Option<(SecretValue, Vec<u8>)> {
        let mut state = self.lock();
        let current = state.current.as_mut()?;
        if current.issued.elapsed() >= self.policy.max_age || current.uses >= self.policy.max_uses {
            state.current = None;
            return None;
        }
        current.uses += 1;
        Some((current.plaintext.clone(), current.encrypted.clone()))
    }

    /// Remembers a freshly issued data key that was just used once.
    pub(crate) fn put_issued(&self, plaintext: SecretValue, encrypted: Vec<u8>) {
        if self.policy.max_age.is_zero() || self.policy.max_uses <= 1 {
            return;
        }
        let mut state = self.lock();
        if self.policy.max_decrypted > 0 {
            Self::remember(
                &mut state,
                &self.policy,
                encrypted.clone(),
                plaintext.clone(),
            );
        }
        state.current = Some(Current {
            plaintext,
            encrypted,
            issued: Instant::now(),
            uses: 1,
        });
    }

    /// The plaintext of a data key decrypted recently.
    pub(crate) fn decrypted(&self, encrypted: &[u8]) -> Option<SecretValue> {
        let mut state = self.lock();
        let (key, at) = state.decrypted.get(encrypted)?;
        if at.elapsed() < self.policy.max_age {
            return Some(key.clone());
        }
        state.decrypted.remove(encrypted);
        None
    }

    /// Remembers a decrypted data key.
    pub(crate) fn put_decrypted(&self, encrypted: &[u8], plaintext: SecretValue) {
        if self.policy.max_decrypted == 0 || self.policy.max_age.is_zero() {
            return;
        }
        let mut state = self.lock();
        Self::remember(&mut state, &self.policy, encrypted.to_vec(), plaintext);
    }

    fn remember(
        state: &mut State,
        policy: &DataKeyCachePolicy,
        encrypted: Vec<u8>,
        plaintext: SecretValue,
    ) {
        if state.decrypted.len() >= policy.max_decrypted {
            let max_age = policy.max_age;
            state.decrypted.retain(|_, (_, at)| at.elapsed() < max_age);
            if state.decrypted.len() >= policy.max_decrypted {
                state.decrypted.clear();
            }
        }
        state
            .decrypted
            .insert(encrypted, (plaintext, Instant::now()));
    }
}
