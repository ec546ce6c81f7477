//! The next rotation a secret's `DescribeSecret` publishes, and a memo that keeps asking for
//! it cheap: what [`SecretsManagerStoreBuilder::rotation_schedule`] turns on.
//!
//! `GetSecretValue` says nothing about rotation; `DescribeSecret` does (`NextRotationDate`,
//! or `RotationRules` with `LastRotatedDate`), and counts against the same request quota
//! (10,000 per second per account and region for both). So the store describes a secret only
//! when a `get` reads a version it has not described yet (the first read, and the first after
//! each rotation or write, which is when the date moves) or the last description is older
//! than [`DESCRIBE_EVERY`] (a schedule changed without a new version): one `DescribeSecret`
//! per secret per version, and at most one an hour, against one `GetSecretValue` per cache
//! load. A failed `DescribeSecret` (no `secretsmanager:DescribeSecret` permission, a
//! throttle) never fails the `get`: the value is returned without a date, and the failure is
//! remembered like an answer, so it is not asked again before the hour is over.
//!
//! [`SecretsManagerStoreBuilder::rotation_schedule`]: crate::SecretsManagerStoreBuilder::rotation_schedule

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;

/// How long a secret's description is reused while its version stays the same.
pub(crate) const DESCRIBE_EVERY: Duration = Duration::from_secs(3600);

/// Past this many secrets remembered, the memo forgets them all (it is only a saving).
const REMEMBER_AT_MOST: usize = 10_000;

/// One secret's description: for which version, when, and the date it gave.
#[derive(Clone)]
struct Described {
    version: Arc<str>,
    at: Instant,
    next_rotation: Option<SystemTime>,
}

/// The last description of each secret read, shared by a store and its clones.
#[derive(Default)]
pub(crate) struct ScheduleMemo {
    secrets: Mutex<HashMap<String, Described>>,
}

impl ScheduleMemo {
    /// The remembered date of `name` at `version`, if it need not be asked again at `now`:
    /// `Some(date)` (the date itself may be `None`: no schedule, or the last ask failed).
    pub(crate) fn lookup(
        &self,
        name: &str,
        version: &str,
        now: Instant,
    ) -> Option<Option<SystemTime>> {
        let secrets = self.secrets.lock().unwrap_or_else(PoisonError::into_inner);
        let d = secrets.get(name)?;
        (&*d.version == version && now.duration_since(d.at) < DESCRIBE_EVERY)
            .then_some(d.next_rotation)
    }

    /// Remembers what the description of `name` at `version` gave at `now`.
    pub(crate) fn remember(
        &self,
        name: &str,
        version: Arc<str>,
        now: Instant,
        next_rotation: Option<SystemTime>,
    ) {
        let mut secrets = self.secrets.lock().unwrap_or_else(PoisonError::into_inner);
        if secrets.len() >= REMEMBER_AT_MOST && !secrets.contains_key(name) {
            secrets.clear();
        }
        secrets.insert(
            name.to_owned(),
            Described {
                version,
                at: now,
                next_rotation,
            },
        );
    }
}

/// The next rotation a `DescribeSecret` answer publishes: its `NextRotationDate`; without
/// one, with rotation enabled, `LastRotatedDate` plus the rules' interval
/// (`AutomaticallyAfterDays`, or a `ScheduleExpression` of the form `rate(N days)` /
/// `rate(N hours)`; `cron(…)` expressions are not evaluated). `None` when rotation is off or
/// nothing says when.
pub(crate) fn next_rotation(out: &DescribeSecretOutput) -> Option<SystemTime> {
    if let Some(at) = out
        .next_rotation_date()
        .and_then(|d| SystemTime::try_from(*d).ok())
    {
        return Some(at);
    }
    if out.rotation_enabled() != Some(true) {
        return None;
    }
    let last = out
        .last_rotated_date()
        .and_then(|d| SystemTime::try_from(*d).ok())?;
    let rules = out.rotation_rules()?;
    let every = match (
        rules.automatically_after_days(),
        rules.schedule_expression(),
    ) {
        (Some(days), _) if days > 0 => Duration::from_secs(days.unsigned_abs() * 86_400),
        (_, Some(expression)) => rate(expression)?,
        _ => return None,
    };
    last.checked_add(every)
}

/// The interval of a `rate(N days)` or `rate(N hours)` schedule expression.
fn rate(expression: &str) -> Option<Duration> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok().filter(|n| *n > 0)?;
    let unit_secs = match unit.trim() {
        "day" | "days" => 86_400,
        "hour" | "hours" => 3_600,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(unit_secs)?))
}

#[cfg(test)]
mod tests {
    use aws_sdk_secretsmanager::primitives::DateTime;
    use aws_sdk_secretsmanager::types::RotationRulesType;

    use super::*;

    fn at(secs: i64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
    }

    #[test]
    fn the_published_date_wins() {
        let out = DescribeSecretOutput::builder()
            .next_rotation_date(DateTime::from_secs(2_000_000_000))
            .rotation_enabled(true)
            .last_rotated_date(DateTime::from_secs(1_000_000_000))
            .rotation_rules(
                RotationRulesType::builder()
                    .automatically_after_days(30)
                    .build(),
            )
            .build();
        assert_eq!(next_rotation(&out), Some(at(2_000_000_000)));
    }

    #[test]
    fn without_a_date_the_rules_give_it() {
        let base = DescribeSecretOutput::builder()
            .rotation_enabled(true)
            .last_rotated_date(DateTime::from_secs(1_000_000_000));
        let days = base
            .clone()
            .rotation_rules(
                RotationRulesType::builder()
                    .automatically_after_days(30)
                    .build(),
            )
            .build();
        assert_eq!(next_rotation(&days), Some(at(1_000_000_000 + 30 * 86_400)));
        let hours = base
            .clone()
            .rotation_rules(
                RotationRulesType::builder()
                    .schedule_expression("rate(4 hours)")
                    .build(),
            )
            .build();
        assert_eq!(next_rotation(&hours), Some(at(1_000_000_000 + 4 * 3_600)));
        let cron = base
            .rotation_rules(
                RotationRulesType::builder()
                    .schedule_expression("cron(0 16 1,15 * ? *)")
                    .build(),
            )
            .build();
        assert_eq!(next_rotation(&cron), None);
    }

    #[test]
    fn no_rotation_no_date() {
        let off = DescribeSecretOutput::builder()
            .rotation_enabled(false)
            .last_rotated_date(DateTime::from_secs(1_000_000_000))
            .rotation_rules(
                RotationRulesType::builder()
                    .automatically_after_days(30)
                    .build(),
            )
            .build();
        assert_eq!(next_rotation(&off), None);
        assert_eq!(
            next_rotation(&DescribeSecretOutput::builder().build()),
            None
        );
    }

    #[test]
    fn the_memo_asks_again_on_a_new_version_or_after_an_hour() {
        let memo = ScheduleMemo::default();
        let t0 = Instant::now();
        assert_eq!(memo.lookup("s", "v1", t0), None);
        memo.remember("s", "v1".into(), t0, Some(at(5)));
        assert_eq!(memo.lookup("s", "v1", t0), Some(Some(at(5))));
        assert_eq!(memo.lookup("s", "v2", t0), None, "a new version");
        assert_eq!(
            memo.lookup("s", "v1", t0 + DESCRIBE_EVERY),
            None,
            "an hour on"
        );
        memo.remember("t", "v1".into(), t0, None);
        assert_eq!(
            memo.lookup("t", "v1", t0),
            Some(None),
            "a failure is remembered"
        );
    }
}
