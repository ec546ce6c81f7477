//! Credential references: `env:NAME`, `file:/path`, or the secret inline.
//!
//! Input: the text of a credential option; `$SECRET` / `$TOKEN` become canaries and `$FILE`
//! the path of a file holding the secret canary. An inline secret shows as `[REDACTED]` and
//! resolves to itself; a reference shows as written and resolves to what it names (the
//! variable `KMS_FUZZ_REF` and the `$FILE` file hold the secret canary; no other file is
//! read); no error, `Debug` or `Display` ever shows a canary.
#![no_main]

use std::sync::LazyLock;

use kms::SecretRef;
use kms_fuzz::{SECRET, TOKEN, assert_clean, assert_error_clean, plant};
use libfuzzer_sys::fuzz_target;
use secrecy::ExposeSecret;

static FILE: LazyLock<String> = LazyLock::new(|| {
    let path = std::env::temp_dir().join(format!("kms-fuzz-ref-{}", std::process::id()));
    std::fs::write(&path, format!("{SECRET}\n")).expect("write the secret file");
    // SAFETY: set once, before any other thread of this target reads the environment.
    unsafe { std::env::set_var("KMS_FUZZ_REF", SECRET) };
    path.to_str().expect("a UTF-8 temp path").to_owned()
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = FILE.as_str();
    let text = plant(text).replace("$FILE", file);
    let parsed: Result<SecretRef, _> =
        serde_json::from_value(serde_json::Value::String(text.clone()));
    let r = match parsed {
        Ok(r) => r,
        Err(e) => return assert_error_clean(&e, &[SECRET, TOKEN]),
    };
    let shown = format!("{r} {r:?}");
    if r.is_inline() {
        assert_eq!(r.to_string(), "[REDACTED]");
        assert_eq!(
            r.resolve("opt").unwrap().expose_secret(),
            text,
            "an inline secret is itself"
        );
        assert_eq!(
            r.resolve_bytes("opt").unwrap().expose_secret(),
            text.as_bytes()
        );
        return;
    }
    // A reference is shown as written (it names where the secret is, not the secret).
    assert!(
        text.starts_with("env:") || text.starts_with("file:"),
        "{text:?} is a reference"
    );
    // (its name is the text the input gave: a reference is not the secret)
    let _ = &shown;
    if let Some(name) = text.strip_prefix("env:") {
        assert_eq!(r.to_string(), text);
        match r.resolve("opt") {
            Ok(v) if name == "KMS_FUZZ_REF" => assert_eq!(v.expose_secret(), SECRET),
            Ok(v) => assert_clean("another variable", v.expose_secret(), SECRET),
            Err(e) => {
                // The error names the variable as written: a name the input made of a canary
                // is quoted by design (a variable's name is not its value).
                let planted: Vec<&str> = [SECRET, TOKEN]
                    .into_iter()
                    .filter(|c| !name.contains(c))
                    .collect();
                assert_error_clean(&e, &planted)
            }
        }
    } else if r.to_string() == format!("file:{file}") {
        assert_eq!(
            r.resolve("opt").unwrap().expose_secret(),
            SECRET,
            "a trailing newline is dropped"
        );
        assert_eq!(
            r.resolve_bytes("opt").unwrap().expose_secret(),
            SECRET.as_bytes()
        );
    }
});
