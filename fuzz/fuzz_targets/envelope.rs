//! The envelope record decoder, through the public decorator over a memory store.
//!
//! First byte of the input picks the case:
//! - 0: the rest is a stored record the envelope did not write: reading it must fail
//!   (`InvalidData`), never return a value;
//! - 1: the rest is a value: written through the envelope, it reads back byte for byte, and
//!   the stored record neither is nor holds the plaintext;
//! - 2: bytes 1–2 pick a position and 3 a mask; the rest is a value: written through the
//!   envelope, then the stored record is changed at that position (or cut there): reading
//!   must fail. Reading the untouched record under another key name must fail too.
#![no_main]

use std::sync::{Arc, LazyLock};

use kms_core::envelope::{EnvelopeLayer, format};
use kms_core::{ErrorKind, KeyName, KeyStore, LocalKeyProvider, MemoryStore, SecretValue};
use kms_fuzz::runtime;
use libfuzzer_sys::fuzz_target;

static PROVIDER: LazyLock<Arc<LocalKeyProvider>> =
    LazyLock::new(|| Arc::new(LocalKeyProvider::generate()));

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // Stores refuse empty values: an empty record or value says nothing about the decoder.
    if rest.is_empty() || (mode % 3 == 2 && rest.len() < 4) {
        return;
    }
    let inner = Arc::new(MemoryStore::new());
    let sealed = EnvelopeLayer::new(PROVIDER.clone()).wrap(inner.clone());
    let key = KeyName::new("fuzz/record").unwrap();
    let other = KeyName::new("fuzz/other").unwrap();
    runtime().block_on(async {
        match mode % 3 {
            0 => {
                inner
                    .store(&key, SecretValue::copy_from_slice(rest))
                    .await
                    .unwrap();
                let err = sealed
                    .get(&key)
                    .await
                    .expect_err("a record the envelope did not write");
                assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
            }
            1 => {
                sealed
                    .store(&key, SecretValue::copy_from_slice(rest))
                    .await
                    .unwrap();
                let back = sealed.get(&key).await.unwrap();
                assert_eq!(back.value.expose_secret(), rest, "round trip");
                let raw = inner.get(&key).await.unwrap().value;
                let raw = raw.expose_secret();
                assert_eq!(&raw[..4], format::MAGIC);
                assert!(
                    raw.len()
                        >= rest.len() + format::HEADER_LEN + format::NONCE_LEN + format::TAG_LEN
                );
                if rest.len() >= 8 {
                    assert!(
                        !raw.windows(rest.len()).any(|w| w == rest),
                        "the plaintext is stored"
                    );
                }
            }
            _ => {
                if rest.len() < 3 {
                    return;
                }
                let (pos, mask, value) = (
                    u16::from_be_bytes([rest[0], rest[1]]) as usize,
                    rest[2],
                    &rest[3..],
                );
                sealed
                    .store(&key, SecretValue::copy_from_slice(value))
                    .await
                    .unwrap();
                let raw = inner
                    .get(&key)
                    .await
                    .unwrap()
                    .value
                    .expose_secret()
                    .to_vec();
                inner
                    .store(&other, SecretValue::copy_from_slice(&raw))
                    .await
                    .unwrap();
                assert!(
                    sealed.get(&other).await.is_err(),
                    "a record read under another name"
                );
                let mut changed = raw.clone();
                let at = pos % changed.len();
                if mask == 0 {
                    changed.truncate(at.max(1));
                } else {
                    changed[at] ^= mask;
                }
                inner.store(&key, SecretValue::new(changed)).await.unwrap();
                let err = sealed.get(&key).await.expect_err("a changed record");
                assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
            }
        }
    });
});
