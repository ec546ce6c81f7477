//! Times as RFC 3339 UTC text (`2026-11-29T18:02:11Z`), for the native API.

use std::time::SystemTime;

/// `t` as RFC 3339 UTC, to the second; `None` before 1970.
pub fn format(t: SystemTime) -> Option<String> {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    // Days to civil date (Howard Hinnant's algorithm).
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn formats() {
        let t = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(format(t(0)).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(format(t(1_569_534_789)).unwrap(), "2019-09-26T21:53:09Z");
        assert_eq!(format(t(951_782_400)).unwrap(), "2000-02-29T00:00:00Z");
        assert_eq!(format(t(4_102_444_799)).unwrap(), "2099-12-31T23:59:59Z");
    }
}
