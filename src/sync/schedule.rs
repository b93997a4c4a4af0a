//! When imports run: five-field cron (UTC) with a stable per-object jitter, and when a
//! TenantSync counts as stale.
//!
//! Contract:
//! - [`Schedule::parse`] accepts exactly five fields — minute, hour, day-of-month, month,
//!   day-of-week — with the standard (Vixie cron) meaning: `*`, lists, ranges and steps; month
//!   names `JAN`–`DEC`; day-of-week `0`–`7` where both `0` and `7` are Sunday, and names
//!   `SUN`–`SAT`; when both day fields are restricted a day matching *either* runs. Shorthands:
//!   `@hourly`, `@daily` (= `@midnight`), `@weekly` (Sunday 00:00), `@monthly`, `@yearly` (=
//!   `@annually`). The extensions of the `croner` crate that parses it (`L`, `W`, `#`, `?`, a `+`
//!   before day-of-week for "both days") are accepted too. Seconds and years are refused, and so
//!   is an expression no date matches. All times are UTC.
//! - The *interval* of a schedule is the shortest gap between its first 64 runs after
//!   2001-01-01T00:00:00Z (e.g. 1 day for `0 9 * * 1-5`).
//! - [`Schedule::jitter`]: each object runs `jitter` after every scheduled time, where `jitter`
//!   is the first 8 bytes of SHA-256(object key) modulo the bound, in whole seconds; the bound is
//!   a quarter of the interval, at most one hour. So two hundred objects with `@daily` spread over
//!   00:00–01:00, each always at the same offset; `*/5 * * * *` spreads over 75 seconds. The
//!   object key should be stable and unique, e.g. `namespace/name/uid`.
//! - [`next_run`] is the first jittered run strictly after a time; [`is_stale`] says whether two
//!   jittered runs have come due since the last success (or since the object was created)
//!   without a new one. Both are pure.

use chrono::{DateTime, Duration, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// The shorthands accepted besides five fields.
pub const SHORTHANDS: &[&str] = &[
    "@hourly",
    "@daily",
    "@midnight",
    "@weekly",
    "@monthly",
    "@yearly",
    "@annually",
];
/// The largest jitter, whatever the interval.
pub const MAX_JITTER: Duration = Duration::hours(1);
/// Runs sampled to find a schedule's interval.
const INTERVAL_SAMPLES: usize = 64;

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Not five fields and not a shorthand.
    #[error(
        "{schedule:?} must be a cron expression with five fields (minute hour day-of-month month day-of-week, UTC) or one of @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually"
    )]
    Shape {
        /// The schedule as given.
        schedule: String,
    },
    /// A field is out of range or malformed.
    #[error("{schedule:?} is not a valid cron expression: {reason}")]
    Invalid {
        /// The schedule as given.
        schedule: String,
        /// What the parser objected to.
        reason: String,
    },
    /// No date matches (e.g. `0 0 30 2 *`).
    #[error("{schedule:?} never runs: no date matches it")]
    NeverRuns {
        /// The schedule as given.
        schedule: String,
    },
}

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    cron: Cron,
    interval: Duration,
}

impl Schedule {
    /// Parses a schedule (see the module docs for the accepted forms).
    pub fn parse(schedule: &str) -> Result<Schedule, ScheduleError> {
        let trimmed = schedule.trim();
        let shape_error = || ScheduleError::Shape {
            schedule: schedule.to_string(),
        };
        let expression = if trimmed.starts_with('@') {
            let lower = trimmed.to_ascii_lowercase();
            if !SHORTHANDS.contains(&lower.as_str()) {
                return Err(shape_error());
            }
            if lower == "@midnight" {
                "@daily".to_string()
            } else {
                lower
            }
        } else if trimmed.split_whitespace().count() == 5 {
            trimmed.to_string()
        } else {
            return Err(shape_error());
        };
        let cron = parse_cron(&expression).map_err(|e| ScheduleError::Invalid {
            schedule: schedule.to_string(),
            reason: explain(&expression, &e),
        })?;
        let interval = shortest_gap(&cron).ok_or_else(|| ScheduleError::NeverRuns {
            schedule: schedule.to_string(),
        })?;
        Ok(Schedule {
            text: trimmed.to_string(),
            cron,
            interval,
        })
    }

    /// The schedule as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The shortest gap between runs (see the module docs).
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The first scheduled time strictly after `after`, without jitter.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }

    /// The stable delay of the object with this key after every scheduled time.
    pub fn jitter(&self, object_key: &str) -> Duration {
        let bound = (self.interval / 4).min(MAX_JITTER).num_seconds();
        if bound <= 0 {
            return Duration::zero();
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, object_key.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest.as_ref()[..8]);
        Duration::seconds((u64::from_be_bytes(first) % bound as u64) as i64)
    }
}

/// The first run of the object with key `object_key` strictly after `after`: a scheduled time
/// plus the object's jitter. `None` only past the year 5000.
pub fn next_run(
    schedule: &Schedule,
    object_key: &str,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let jitter = schedule.jitter(object_key);
    Some(schedule.next_after(after - jitter)? + jitter)
}

/// Whether an import is stale: two runs of the object have come due since `since` (its last
/// successful import, or its creation when it never had one) and `now` is past the second.
pub fn is_stale(
    schedule: &Schedule,
    object_key: &str,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    let second = next_run(schedule, object_key, since)
        .and_then(|first| next_run(schedule, object_key, first));
    second.is_some_and(|second| now >= second)
}

/// The five fields: name and allowed values.
const FIELDS: [(&str, &str); 5] = [
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-7 (0 and 7 are Sunday) or SUN-SAT"),
];

fn parse_cron(expression: &str) -> Result<Cron, croner::errors::CronError> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(expression)
}

/// Names the field a parse error comes from (each field is tried alone, the others `*`).
fn explain(expression: &str, error: &croner::errors::CronError) -> String {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    if fields.len() != 5 {
        return error.to_string();
    }
    for (i, (name, allowed)) in FIELDS.iter().enumerate() {
        let mut alone = ["*"; 5];
        alone[i] = fields[i];
        if let Err(e) = parse_cron(&alone.join(" ")) {
            return format!(
                "the {name} field {:?} is invalid ({e}); allowed: {allowed}",
                fields[i]
            );
        }
    }
    error.to_string()
}

fn shortest_gap(cron: &Cron) -> Option<Duration> {
    let start = Utc.with_ymd_and_hms(2001, 1, 1, 0, 0, 0).single()?;
    let mut previous = cron.find_next_occurrence(&start, true).ok()?;
    let mut shortest: Option<Duration> = None;
    for _ in 1..INTERVAL_SAMPLES {
        let Ok(next) = cron.find_next_occurrence(&previous, false) else {
            break;
        };
        let gap = next - previous;
        shortest = Some(shortest.map_or(gap, |s| s.min(gap)));
        previous = next;
    }
    shortest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn next(schedule: &str, after: &str) -> String {
        Schedule::parse(schedule)
            .unwrap()
            .next_after(at(after))
            .unwrap()
            .to_rfc3339()
    }

    #[test]
    fn day_of_week_has_standard_semantics() {
        // 2025-06-02 is a Monday.
        let monday = "2025-06-02T12:00:00Z";
        let table = [
            ("0 9 * * 0", "2025-06-08T09:00:00+00:00"), // 0 = Sunday
            ("0 9 * * 7", "2025-06-08T09:00:00+00:00"), // 7 = Sunday too
            ("0 9 * * 1", "2025-06-09T09:00:00+00:00"), // 1 = Monday (after 12:00 today)
            ("0 13 * * 1", "2025-06-02T13:00:00+00:00"),
            ("0 9 * * 6", "2025-06-07T09:00:00+00:00"), // 6 = Saturday
            ("0 9 * * SUN", "2025-06-08T09:00:00+00:00"),
            ("0 9 * * sat", "2025-06-07T09:00:00+00:00"),
            ("0 9 * * 1-5", "2025-06-03T09:00:00+00:00"),
            ("0 9 * * 5-7", "2025-06-06T09:00:00+00:00"),
            ("0 9 * * 0,3", "2025-06-04T09:00:00+00:00"),
            ("@weekly", "2025-06-08T00:00:00+00:00"),
        ];
        for (schedule, want) in table {
            assert_eq!(next(schedule, monday), want, "{schedule}");
        }
    }

    #[test]
    fn both_day_fields_restricted_means_either() {
        // The 15th, or any Friday: from Monday 2025-06-02 the first is Friday the 6th.
        assert_eq!(
            next("0 0 15 * 5", "2025-06-02T00:00:00Z"),
            "2025-06-06T00:00:00+00:00"
        );
    }

    #[test]
    fn shorthands_and_fields() {
        let table = [
            ("@hourly", "2025-06-02T13:00:00+00:00"),
            ("@daily", "2025-06-03T00:00:00+00:00"),
            ("@midnight", "2025-06-03T00:00:00+00:00"),
            ("@DAILY", "2025-06-03T00:00:00+00:00"),
            ("@monthly", "2025-07-01T00:00:00+00:00"),
            ("@yearly", "2026-01-01T00:00:00+00:00"),
            ("@annually", "2026-01-01T00:00:00+00:00"),
            ("30 2 * * *", "2025-06-03T02:30:00+00:00"),
            ("*/15 * * * *", "2025-06-02T12:45:00+00:00"),
            ("0 0 1 JAN,jul *", "2025-07-01T00:00:00+00:00"),
            ("  5 4 * * *  ", "2025-06-03T04:05:00+00:00"),
        ];
        for (schedule, want) in table {
            assert_eq!(next(schedule, "2025-06-02T12:34:56Z"), want, "{schedule}");
        }
    }

    #[test]
    fn bad_schedules_are_refused_with_the_rule() {
        let table = [
            ("", "must be a cron expression with five fields"),
            ("* * * *", "must be a cron expression with five fields"),
            ("0 * * * * *", "must be a cron expression with five fields"),
            (
                "0 0 * * * 2030",
                "must be a cron expression with five fields",
            ),
            ("@fortnightly", "must be a cron expression with five fields"),
            ("every night", "must be a cron expression with five fields"),
            ("61 2 * * *", "is not a valid cron expression"),
            ("0 24 * * *", "is not a valid cron expression"),
            ("0 0 32 * *", "is not a valid cron expression"),
            ("0 0 * 13 *", "is not a valid cron expression"),
            ("0 0 * * 8", "is not a valid cron expression"),
            ("0 0 * * MON-XYZ", "is not a valid cron expression"),
            ("0 0 30 2 *", "never runs"),
        ];
        for (schedule, want) in table {
            let err = Schedule::parse(schedule).unwrap_err().to_string();
            assert!(err.contains(want), "{schedule:?}: {err}");
            assert!(
                err.contains(&format!("{schedule:?}")),
                "names the input: {err}"
            );
        }
    }

    #[test]
    fn interval_is_the_shortest_gap() {
        let table = [
            ("* * * * *", 60),
            ("*/5 * * * *", 300),
            ("@hourly", 3_600),
            ("0 0,12 * * *", 43_200),
            ("@daily", 86_400),
            ("0 9 * * 1-5", 86_400),
            ("@weekly", 604_800),
            ("@monthly", 28 * 86_400),
        ];
        for (schedule, secs) in table {
            let s = Schedule::parse(schedule).unwrap();
            assert_eq!(s.interval().num_seconds(), secs, "{schedule}");
        }
    }

    #[test]
    fn jitter_is_stable_and_bounded_by_a_quarter_interval_and_an_hour() {
        let table = [("*/5 * * * *", 75), ("@hourly", 900), ("@daily", 3_600)];
        for (schedule, bound) in table {
            let s = Schedule::parse(schedule).unwrap();
            for i in 0..500 {
                let key = format!("ns/sync-{i}/uid-{i}");
                let j = s.jitter(&key).num_seconds();
                assert!((0..bound).contains(&j), "{schedule} {key}: {j}");
                assert_eq!(s.jitter(&key), s.jitter(&key), "stable");
            }
        }
    }

    #[test]
    fn two_hundred_objects_with_one_schedule_spread_out() {
        let s = Schedule::parse("@daily").unwrap();
        let after = at("2025-06-02T12:00:00Z");
        let mut runs: Vec<DateTime<Utc>> = (0..200)
            .map(|i| next_run(&s, &format!("tenants/sync-{i}/{i:08x}"), after).unwrap())
            .collect();
        runs.sort();
        let midnight = at("2025-06-03T00:00:00Z");
        assert!(
            runs.iter()
                .all(|r| *r >= midnight && *r < midnight + MAX_JITTER)
        );
        let per_minute = runs.chunk_by(|a, b| a.timestamp() / 60 == b.timestamp() / 60);
        let busiest = per_minute.map(<[_]>::len).max().unwrap();
        assert!(
            busiest <= 12,
            "at most a dozen start in the same minute, saw {busiest}"
        );
        let distinct_minutes = {
            let mut m: Vec<i64> = runs.iter().map(|r| r.timestamp() / 60).collect();
            m.dedup();
            m.len()
        };
        assert!(distinct_minutes >= 40, "{distinct_minutes} minutes used");
    }

    #[test]
    fn next_run_adds_the_jitter_to_every_scheduled_time() {
        let s = Schedule::parse("@hourly").unwrap();
        let key = "ns/a/uid";
        let j = s.jitter(key);
        let first = next_run(&s, key, at("2025-06-02T12:00:00Z")).unwrap();
        assert_eq!(first, at("2025-06-02T12:00:00Z") + j);
        let second = next_run(&s, key, first).unwrap();
        assert_eq!(second, first + Duration::hours(1), "strictly after");
        assert_eq!(
            next_run(&s, key, first - Duration::seconds(1)).unwrap(),
            first
        );
    }

    #[test]
    fn stale_after_two_missed_runs() {
        let s = Schedule::parse("0 9 * * 1-5").unwrap();
        let key = "ns/weekday/uid";
        let j = s.jitter(key);
        // Last success Friday 2025-06-06 10:30 (after Friday's run, whatever the jitter);
        // runs due Monday and Tuesday 09:00 + jitter (< 1 h).
        let since = at("2025-06-06T10:30:00Z");
        let table = [
            ("2025-06-08T23:00:00Z", false), // weekend: nothing was due
            ("2025-06-09T12:00:00Z", false), // one run missed
            ("2025-06-10T08:59:00Z", false),
        ];
        for (now, stale) in table {
            assert_eq!(is_stale(&s, key, since, at(now)), stale, "{now}");
        }
        let tuesday_run = at("2025-06-10T09:00:00Z") + j;
        assert!(!is_stale(
            &s,
            key,
            since,
            tuesday_run - Duration::seconds(1)
        ));
        assert!(is_stale(&s, key, since, tuesday_run));
    }
}
