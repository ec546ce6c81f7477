//! The `kms export` / `import` bundle reader.
//!
//! Input: a bundle file. `$SECRET` becomes the secret canary and `$B64` its base64.
//! - An age file (`age-encryption.org/v1`) is decrypted with an identity it was never
//!   sealed to: it must be refused (`Denied` or `InvalidInput`), never opened.
//! - Anything else is read as the JSON plaintext: what it accepts writes back as JSON that
//!   reads to the same keys and values byte for byte, writes canonically, and survives an
//!   age seal/unseal round trip; a refusal is `InvalidInput` and never shows a value.
#![no_main]

use std::sync::LazyLock;

use base64::Engine as _;
use kms_cli::bundle::{Bundle, Seal, Unseal, is_age, seal, unseal};
use kms_cli::exit::Exit;
use kms_fuzz::{SECRET, assert_clean, placement, plant};
use libfuzzer_sys::fuzz_target;

static IDENTITY: LazyLock<age::x25519::Identity> = LazyLock::new(age::x25519::Identity::generate);
static B64: LazyLock<String> =
    LazyLock::new(|| base64::engine::general_purpose::STANDARD.encode(SECRET));

fuzz_target!(|data: &[u8]| {
    let file: Vec<u8> = match std::str::from_utf8(data) {
        Ok(text) => plant(&text.replace("$B64", &B64)).into_bytes(),
        Err(_) => data.to_vec(),
    };
    if is_age(&file) {
        let err = unseal(&file, &Unseal::Identities(vec![Box::new(IDENTITY.clone())]))
            .expect_err("a file this identity never sealed");
        assert!(
            matches!(err.exit, Exit::Denied | Exit::InvalidInput),
            "{err}"
        );
        return;
    }
    match Bundle::from_json(&file) {
        Ok(bundle) => {
            assert!(
                bundle.keys.windows(2).all(|w| w[0].0 <= w[1].0),
                "sorted by name"
            );
            let json = bundle.to_json();
            let again = Bundle::from_json(&json).expect("a written bundle reads back");
            assert_eq!(again.keys, bundle.keys, "round trip");
            assert_eq!(*again.to_json(), *json, "canonical");
            let sealed = seal(&json, Seal::Recipients(vec![IDENTITY.to_public()])).unwrap();
            assert!(is_age(&sealed));
            let plain = unseal(
                &sealed,
                &Unseal::Identities(vec![Box::new(IDENTITY.clone())]),
            )
            .unwrap();
            assert_eq!(*plain, *json, "age round trip");
            assert_clean("Debug of a bundle", &format!("{bundle:?}"), SECRET);
        }
        Err(failure) => {
            assert_eq!(failure.exit, Exit::InvalidInput, "{failure}");
            let shown = format!("{failure} {failure:?}");
            for canary in [SECRET, B64.as_str()] {
                if placement(&file, canary, &["value_base64"]).must_hide() {
                    assert_clean("a bundle error", &shown, canary);
                }
            }
        }
    }
});
