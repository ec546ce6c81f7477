//! Durations in the `[agent]` table, in the grammar the `kms` facade uses for its own options:
//! one or more `<integer><unit>` with no spaces, units `ms`, `s`, `m`, `h`, `d` (`300ms`,
//! `10s`, `1h30m`). A bare number is refused, so what is accepted is exactly what the README
//! shows.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// What error messages say is accepted.
pub(crate) const ACCEPTED: &str =
    "a duration like \"300ms\", \"10s\", \"5m\", \"1h30m\" (units ms, s, m, h, d; no spaces)";

/// Parses the grammar; `None` if `text` does not follow it.
pub(crate) fn parse(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
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

/// Formats a duration in the same grammar (`1500ms`, `10s`), for reports and logs.
pub(crate) fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        format!("{ms}ms")
    } else {
        format!("{}s", ms / 1000)
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Option<Duration>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(ACCEPTED)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse(v)
            .map(Some)
            .ok_or_else(|| E::custom(format_args!("invalid duration {v:?}: expected {ACCEPTED}")))
    }
}

/// `#[serde(default, deserialize_with = "duration::opt")]` for an optional duration.
pub(crate) fn opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    d.deserialize_str(DurationVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_grammar() {
        assert_eq!(parse("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse("0s"), Some(Duration::ZERO));
    }

    #[test]
    fn refuses_everything_else() {
        for bad in ["", "10", "5 minutes", "s", "10x", "-1s", "1.5s", "10S"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for d in [Duration::from_millis(1500), Duration::from_secs(10)] {
            assert_eq!(parse(&format(d)), Some(d));
        }
    }
}
