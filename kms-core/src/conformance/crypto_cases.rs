//! The conformance cases of a [`CryptoProvider`](crate::CryptoProvider).

use crate::crypto::{CryptoProvider, EncryptionContext};
use crate::error::ErrorKind;
use crate::secret::SecretValue;

/// The behaviour every [`CryptoProvider`](crate::CryptoProvider) must show: encrypt/decrypt
/// round trip, data keys of 32 bytes whose ciphertext decrypts back to them, and clean
/// failures for another context and a tampered ciphertext. Panics on the first failure.
pub async fn crypto_provider_conformance(provider: &dyn CryptoProvider) {
    let ctx = EncryptionContext::new()
        .with("purpose", "conformance")
        .with("tenant", "t1");
    let plaintext = SecretValue::from("attack at dawn");

    let ciphertext = provider
        .encrypt(&plaintext, &ctx)
        .await
        .unwrap_or_else(|e| panic!("{provider}: encrypt: {e}"));
    assert!(
        !ciphertext.windows(6).any(|w| w == b"attack"),
        "{provider}: ciphertext contains the plaintext"
    );
    let back = provider
        .decrypt(&ciphertext, &ctx)
        .await
        .unwrap_or_else(|e| panic!("{provider}: decrypt: {e}"));
    assert_eq!(back, plaintext, "{provider}: round trip");

    let other = EncryptionContext::new()
        .with("purpose", "conformance")
        .with("tenant", "t2");
    let err = provider
        .decrypt(&ciphertext, &other)
        .await
        .expect_err("decrypt under another context must fail");
    assert!(
        matches!(
            err.kind(),
            ErrorKind::InvalidData | ErrorKind::PermissionDenied | ErrorKind::InvalidInput
        ),
        "{provider}: wrong context gave {err}"
    );
    assert!(
        !err.to_string().contains("attack"),
        "{provider}: error shows plaintext: {err}"
    );

    let data_key = provider
        .generate_data_key(&ctx)
        .await
        .unwrap_or_else(|e| panic!("{provider}: data key: {e}"));
    assert_eq!(
        data_key.plaintext.len(),
        32,
        "{provider}: data keys are 256-bit"
    );
    let unwrapped = provider
        .decrypt(&data_key.ciphertext, &ctx)
        .await
        .unwrap_or_else(|e| panic!("{provider}: decrypting a data key: {e}"));
    assert_eq!(
        unwrapped, data_key.plaintext,
        "{provider}: data key ciphertext decrypts to its plaintext"
    );
    let second = provider.generate_data_key(&ctx).await.unwrap();
    assert_ne!(
        second.plaintext, data_key.plaintext,
        "{provider}: data keys are fresh"
    );
    assert!(
        format!("{data_key:?}").contains("[REDACTED]"),
        "{provider}: data key Debug shows the key"
    );

    let mut tampered = ciphertext.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let err = provider
        .decrypt(&tampered, &ctx)
        .await
        .expect_err("tampered ciphertext must fail");
    assert!(
        matches!(
            err.kind(),
            ErrorKind::InvalidData | ErrorKind::InvalidInput | ErrorKind::PermissionDenied
        ),
        "{provider}: tampered ciphertext gave {err}"
    );
}
