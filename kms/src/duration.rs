//! Durations in configuration: `300ms`, `5s`, `5m`, `1h30m`, `2d`.
//!
//! The grammar is deliberately strict: one or more `<integer><unit>` with no spaces, units
//! `ms`, `s`, `m`, `h`, `d`. A bare number is refused (seconds or milliseconds?), and so is
//! prose such as `"5 minutes"`, so that what is accepted is exactly what the README shows.
//!
//! Public so that programs reading their own settings beside the facade's (the `kms-agent`
//! binary's `[agent]` table) accept exactly the same durations:
//!
//! ```
//! use std::time::Duration;
//!
//! assert_eq!(kms::duration::parse("1h30m"), Some(Duration::from_secs(5400)));
//! assert_eq!(kms::duration::parse("90"), None);
//! assert_eq!(kms::duration::format(Duration::from_millis(1500)), "1500ms");
//!
//! #[derive(serde::Deserialize)]
//! struct Settings {
//!     #[serde(default, deserialize_with = "kms::duration::opt")]
//!     timeout: Option<Duration>,
//! }
//! ```

use std::fmt;
use std::time::Duration;

use serde::Deserializer;
use serde::de::{self, Visitor};

/// What the error messages say is accepted (for a program's own error messages).
pub const ACCEPTED: &str =
    "a duration like \"300ms\", \"5s\", \"5m\", \"1h30m\" (units ms, s, m, h, d; no spaces)";

/// Parses the strict grammar; `None` if `text` does not follow it (or overflows).
pub fn parse(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            "d" => Duration::from_secs(n.checked_mul(86_400)?),
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(part)?;
    }
    Some(total)
}

/// Formats a duration in the same grammar, whole seconds as `10s`, anything finer in
/// milliseconds (`1500ms`; below a millisecond is dropped), so [`parse`] reads it back.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        format!("{ms}ms")
    } else {
        format!("{}s", ms / 1000)
    }
}

struct DurationVisitor {
    off_allowed: bool,
}

impl<'de> Visitor<'de> for DurationVisitor {
    type Value = Option<Duration>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(ACCEPTED)?;
        if self.off_allowed {
            f.write_str(" or \"off\"")?;
        }
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if self.off_allowed && v == "off" {
            return Ok(None);
        }
        match parse(v) {
            Some(d) => Ok(Some(d)),
            None => Err(E::custom(format_args!(
                "invalid duration {v:?}: expected {}{}",
                ACCEPTED,
                if self.off_allowed { " or \"off\"" } else { "" }
            ))),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Err(E::custom(format_args!(
            "invalid duration {v}: a bare number has no unit; expected {ACCEPTED}"
        )))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Err(E::custom(format_args!(
            "invalid duration {v}: a bare number has no unit; expected {ACCEPTED}"
        )))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Err(E::custom(format_args!(
            "invalid duration {v}: a bare number has no unit; expected {ACCEPTED}"
        )))
    }
}

/// `#[serde(default, deserialize_with = "kms::duration::opt")]` for an `Option<Duration>`:
/// a string in the grammar; a bare number is an error saying it has no unit.
///
/// # Errors
///
/// The deserializer's error, with a message naming the value and what is accepted.
pub fn opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    d.deserialize_any(DurationVisitor { off_allowed: false })
}

/// A duration that may also be `"off"`: the outer `None` is "not set", `Some(None)` is "off".
///
/// # Errors
///
/// As [`opt`], the message also naming `"off"`.
pub fn opt_or_off<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Duration>>, D::Error> {
    d.deserialize_any(DurationVisitor { off_allowed: true })
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_forms_parse() {
        for (text, ms) in [
            ("300ms", 300),
            ("5s", 5_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("2d", 172_800_000),
            ("0s", 0),
            ("1m500ms", 60_500),
        ] {
            assert_eq!(parse(text), Some(Duration::from_millis(ms)), "{text}");
        }
        assert_eq!(format(Duration::from_millis(300)), "300ms");
        assert_eq!(format(Duration::from_secs(300)), "300s");
    }

    #[test]
    fn prose_spaces_bare_numbers_and_unknown_units_do_not() {
        for text in [
            "5 minutes",
            "5minutes",
            "5 m",
            " 5m",
            "5",
            "",
            "m",
            "5M",
            "1.5s",
            "-5s",
            "5us",
            "99999999999999999999d",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }
}
