//! The keyring index shard decoder: what it accepts re-encodes and decodes to the same names
//! and chain length; every name it returns is a valid key name; it never accepts a shard
//! whose version is not 1.
#![no_main]

use kms_backend_keyring::index::{MAX_INDEX_SHARDS, decode_shard, encode_shard};
use kms_core::KeyName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match decode_shard(data) {
        Ok((names, length)) => {
            for n in &names {
                KeyName::new(n).expect("a decoded name is a key name");
            }
            assert!(length.is_none_or(|n| (1..=MAX_INDEX_SHARDS).contains(&n)));
            let v: serde_json::Value = serde_json::from_slice(data).expect("accepted JSON");
            assert_eq!(v.get("v").and_then(serde_json::Value::as_u64), Some(1));
            let bytes = encode_shard(&names, length);
            let again = decode_shard(&bytes).expect("an encoded shard decodes");
            assert_eq!(again, (names.clone(), length));
            assert_eq!(
                encode_shard(&again.0, again.1),
                bytes,
                "encoding is canonical"
            );
        }
        Err(e) => assert_eq!(e.kind(), kms_core::ErrorKind::InvalidData),
    }
});
