//! Walks the kernel keyrings reachable from the session keyring without describing keys
//! through `linux-keyutils`.
//!
//! `linux-keyutils` 0.2.5 describes a key (`KEYCTL_DESCRIBE`) into a 512-byte buffer and
//! panics when the answer is longer (`Metadata::from_id`, used by `Key::metadata` and every
//! `KeyRing::get_links`): one key with a description over ~490 bytes anywhere in a keyring,
//! put there by any program, made every walk of that keyring panic. This module reads the
//! structure from the keyrings' payloads (`KEYCTL_READ` on a keyring returns the serials it
//! links, `keyrings(7)`) and the types and descriptions from `/proc/keys` (every key the
//! process may view, with its full description, `proc(5)`).

use std::collections::HashMap;

use linux_keyutils::{Key, KeySerialId};

use super::key_error::ring_error;

/// `KEY_SPEC_SESSION_KEYRING`: the special id of the calling process's session keyring.
pub(crate) const SESSION: i32 = -3;

/// The most keyrings a walk visits.
const MAX_KEYRINGS: usize = 64;

/// One key as `/proc/keys` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Described {
    /// The key type (`user`, `keyring`, …).
    pub(crate) kind: String,
    /// The full description.
    pub(crate) description: String,
    /// Instantiated and not revoked, dead, negative or invalidated: a key a search can find.
    /// (An invalidated key stays linked, and listed in `/proc/keys`, until the kernel's
    /// garbage collector runs.)
    pub(crate) live: bool,
    /// The owning uid.
    pub(crate) uid: u32,
    /// The permission mask (`KEY_POS_*`, `KEY_USR_*`, `KEY_GRP_*`, `KEY_OTH_*`).
    pub(crate) perm: u32,
}

/// Every key `/proc/keys` shows this process, by serial.
pub(crate) fn described() -> keyring_core::Result<HashMap<i32, Described>> {
    let text = std::fs::read_to_string("/proc/keys")
        .map_err(|e| keyring_core::Error::PlatformFailure(Box::new(e)))?;
    Ok(text.lines().filter_map(parse_line).collect())
}

/// Parses one line of `/proc/keys`:
/// `<serial hex> <flags> <usage> <timeout> <perm hex> <uid> <gid> <type> <description>[: <summary>]`.
pub(crate) fn parse_line(line: &str) -> Option<(i32, Described)> {
    let mut rest = line;
    let mut fields = Vec::with_capacity(8);
    for _ in 0..8 {
        rest = rest.trim_start_matches(' ');
        let end = rest.find(' ')?;
        fields.push(&rest[..end]);
        rest = &rest[end..];
    }
    let serial = u32::from_str_radix(fields[0], 16).ok()? as i32;
    let perm = u32::from_str_radix(fields[4], 16).ok()?;
    let uid = fields[5].parse().ok()?;
    // `I` instantiated, `R` revoked, `D` dead, `N` negative, `i` invalidated (`proc_keys_show`).
    let flags = fields[1];
    let live = flags.contains('I') && !flags.contains(['R', 'D', 'N', 'i']);
    let shown = rest.trim_start_matches(' ');
    // `user` keys and keyrings append `: <data length>` / `: <links>` / `: empty`.
    let description = match shown.rsplit_once(": ") {
        Some((d, summary))
            if summary == "empty" || summary.chars().all(|c| c.is_ascii_digit() || c == '/') =>
        {
            d
        }
        _ => shown,
    };
    Some((
        serial,
        Described {
            kind: fields[7].to_owned(),
            description: description.to_owned(),
            live,
            uid,
            perm,
        },
    ))
}

/// The serials keyring `ring` links (empty if it cannot be read).
pub(crate) fn links(ring: i32) -> Vec<i32> {
    Key::from_id(KeySerialId::new(ring))
        .read_to_vec()
        .map(|bytes| {
            bytes
                .chunks_exact(4)
                .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        })
        .unwrap_or_default()
}

/// Keyrings (by serial) with the serials each links directly.
pub(crate) type Rings = Vec<(i32, Vec<i32>)>;

/// Every keyring reachable from the session keyring (the session first, as [`SESSION`]),
/// with the serials each links directly, and the table of descriptions.
pub(crate) fn reachable() -> keyring_core::Result<(Rings, HashMap<i32, Described>)> {
    // Fails (rather than walking nothing) when the session keyring cannot be read.
    Key::from_id(KeySerialId::new(SESSION))
        .read_to_vec()
        .map_err(|e| ring_error("the session keyring", e))?;
    let table = described()?;
    let mut todo = vec![SESSION];
    let mut seen: Rings = Vec::new();
    while let Some(ring) = todo.pop() {
        if seen.iter().any(|(r, _)| *r == ring) || seen.len() >= MAX_KEYRINGS {
            continue;
        }
        let linked = links(ring);
        for id in &linked {
            if table.get(id).is_some_and(|d| d.kind == "keyring") {
                todo.push(*id);
            }
        }
        seen.push((ring, linked));
    }
    Ok((seen, table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_keys_lines() {
        let (id, d) = parse_line(
            "30c83ae2 I--Q---     1 perm 3f010000     0     0 user      keyring:a: b@svc: 12",
        )
        .unwrap();
        assert_eq!(id, 0x30c83ae2);
        assert_eq!(d.kind, "user");
        assert_eq!(d.description, "keyring:a: b@svc");
        assert!(d.live);
        assert_eq!((d.uid, d.perm), (0, 0x3f01_0000));
        let (_, d) = parse_line(
            "30c83ae3 I-----i     1 perm 3f010000     0     0 user      keyring:gone@svc: 1",
        )
        .unwrap();
        assert!(!d.live, "an invalidated key is not live");
        let (_, d) =
            parse_line("3227bce6 I--Q---     1 perm 3f030000     0     0 keyring   _ses: 1")
                .unwrap();
        assert_eq!(
            (d.kind.as_str(), d.description.as_str()),
            ("keyring", "_ses")
        );
        let (_, d) =
            parse_line("0349e469 I--Q---     2 perm 1f030000     0 65534 keyring   _uid.0: empty")
                .unwrap();
        assert_eq!(d.description, "_uid.0");
        assert_eq!((d.uid, d.perm), (0, 0x1f03_0000));
        assert!(parse_line("garbage").is_none());
    }
}
