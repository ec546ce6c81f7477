//! Key names and prefixes: `KeyName::new` / `KeyPrefix::new` accept exactly what an
//! independent statement of the rules accepts, keep the text byte for byte, and agree with
//! each other (`starts_with`, `directory`, `segments`).
#![no_main]

use kms_core::{KeyName, KeyPrefix, MAX_KEY_NAME_LEN};
use libfuzzer_sys::fuzz_target;

/// The rules, written again from the documentation.
fn valid(s: &str, prefix: bool) -> bool {
    if s.is_empty() {
        return prefix;
    }
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_.+=@/".contains(c);
    s.len() <= MAX_KEY_NAME_LEN
        && s.chars().all(safe)
        && !s.starts_with('/')
        && (prefix || !s.ends_with('/'))
        && !s.contains("//")
        && s.split('/').all(|seg| seg != "." && seg != "..")
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (name_text, prefix_text) = text.split_once('\n').unwrap_or((text, ""));

    let name = KeyName::new(name_text);
    assert_eq!(
        name.is_ok(),
        valid(name_text, false),
        "KeyName::new({name_text:?})"
    );
    let prefix = KeyPrefix::new(prefix_text);
    assert_eq!(
        prefix.is_ok(),
        valid(prefix_text, true),
        "KeyPrefix::new({prefix_text:?})"
    );

    if let Ok(name) = &name {
        // Round trip, byte for byte, through every way of making one.
        assert_eq!(name.as_str(), name_text);
        assert_eq!(name.to_string(), name_text);
        assert_eq!(&KeyName::new(name.as_str()).unwrap(), name);
        assert_eq!(
            KeyName::try_from(name_text.to_owned()).unwrap().as_str(),
            name_text
        );
        assert_eq!(name.segments().collect::<Vec<_>>().join("/"), name_text);
        assert!(name.segments().all(|s| !s.is_empty()));
        // Every valid name is a valid prefix of itself, and starts with it.
        let own = KeyPrefix::new(name.as_str()).expect("a name is a prefix");
        assert!(name.starts_with(&own));
        assert!(name.starts_with(&KeyPrefix::all()));
    }
    if let Ok(prefix) = &prefix {
        assert_eq!(prefix.as_str(), prefix_text);
        assert_eq!(prefix.is_empty(), prefix_text.is_empty());
        let dir = prefix.directory();
        assert!(prefix_text.starts_with(dir));
        assert!(dir.is_empty() || dir.ends_with('/'));
        assert!(!prefix_text[dir.len()..].contains('/'));
        if let Ok(name) = &name {
            assert_eq!(name.starts_with(prefix), name_text.starts_with(prefix_text));
        }
    }
    if let Err(e) = &name {
        assert_eq!(e.kind(), kms_core::ErrorKind::InvalidInput);
        // Errors name control characters by code point: a log line never carries them raw.
        assert!(!e.to_string().chars().any(char::is_control), "{e}");
    }
});
