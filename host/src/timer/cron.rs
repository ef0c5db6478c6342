//! Cron schedules in a time zone: `cron = "0 30 9 * * MON-FRI"` with `time_zone =
//! "Europe/Paris"`.
//!
//! Expressions are parsed by `croner` (POSIX/Vixie semantics: six fields with seconds, or the
//! standard five; day of week 0–7 with 0 and 7 Sunday, names, ranges, steps, lists). The time
//! zone comes from `chrono-tz` (the IANA database). `croner` walks wall-clock times; this module
//! turns each into an instant with a defined daylight-saving rule:
//! - a local time that does not exist that day (the clocks jump over it) fires once, at the
//!   first instant after it (the jump itself);
//! - a local time that occurs twice (the clocks go back) fires once, at its first occurrence.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};

/// A validated cron schedule.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    time_zone: Tz,
    cron: croner::Cron,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression && self.time_zone == other.time_zone
    }
}

/// Each field's name and range, in a six-field expression's order.
const FIELDS: [(&str, u32, u32); 6] = [
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

/// Why an expression or a time zone is refused, for the manifest error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError {
    /// `cron` or `time_zone`.
    pub field: &'static str,
    pub message: String,
}

impl CronSchedule {
    /// Parses `expression` (five or six fields) in `time_zone` (an IANA name; UTC when `None`).
    pub fn parse(expression: &str, time_zone: Option<&str>) -> Result<Self, CronError> {
        let time_zone = match time_zone {
            None => Tz::UTC,
            Some(name) => name.parse::<Tz>().map_err(|_| CronError {
                field: "time_zone",
                message: format!(
                    "\"{name}\" is not a time zone of the IANA database: write a name such as \"Europe/Paris\", \"America/New_York\" or \"UTC\""
                ),
            })?,
        };
        let cron_error = |message: String| CronError {
            field: "cron",
            message,
        };
        check_fields(expression).map_err(cron_error)?;
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|error| cron_error(format!("\"{expression}\": {error}")))?;
        Ok(CronSchedule {
            expression: expression.to_owned(),
            time_zone,
            cron,
        })
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone it is read in.
    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    /// The first instant strictly after `after` at which the schedule fires; `None` when it
    /// never fires again (an expression matching no date, such as the 31st of February).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut wall = after.with_timezone(&self.time_zone).naive_local();
        // A handful of candidates at most fall before `after` (those in a repeated hour).
        for _ in 0..10_000 {
            // Wall-clock times are walked as if they were UTC, which has no gaps or repeats.
            let candidate = self
                .cron
                .find_next_occurrence(&Utc.from_utc_datetime(&wall), false)
                .ok()?
                .naive_utc();
            let instant = self.instant_of(candidate);
            if instant > after {
                return Some(instant);
            }
            wall = candidate;
        }
        None
    }

    /// The shortest time between two of its next `samples` fire times from now; `None` when it
    /// fires fewer than twice. What `jitter` and `catch_up` are checked against.
    pub fn shortest_gap(&self, samples: usize) -> Option<std::time::Duration> {
        let mut at = self.next_after(chrono::Utc::now())?;
        let mut shortest: Option<std::time::Duration> = None;
        for _ in 0..samples {
            let Some(next) = self.next_after(at) else {
                break;
            };
            let gap = (next - at).to_std().unwrap_or_default();
            shortest = Some(shortest.map_or(gap, |shortest| shortest.min(gap)));
            at = next;
        }
        shortest
    }

    /// Which time to fire for the time `due`, noticed at `now`: `due` itself, unless later
    /// times have passed too (the wall clock was stepped forward, or the host suspended), then
    /// the latest of them, so that a jump fires once instead of once per time it skipped.
    pub fn time_to_fire(&self, due: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
        if self
            .next_after(due)
            .is_some_and(|following| following <= now)
        {
            self.latest_at_or_before(now)
                .filter(|latest| *latest > due)
                .unwrap_or(due)
        } else {
            due
        }
    }

    /// The latest instant at or before `at` at which the schedule fires, if any.
    fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut wall = at.with_timezone(&self.time_zone).naive_local();
        // As in `next_after`: a handful of candidates at most fall after `at` (a repeated hour).
        for _ in 0..10_000 {
            let candidate = self
                .cron
                .find_previous_occurrence(&Utc.from_utc_datetime(&wall), true)
                .ok()?
                .naive_utc();
            let instant = self.instant_of(candidate);
            if instant <= at {
                return Some(instant);
            }
            wall = candidate - chrono::Duration::seconds(1);
        }
        None
    }

    /// When the wall-clock time `wall` happens in the time zone, by the rules above.
    fn instant_of(&self, wall: NaiveDateTime) -> DateTime<Utc> {
        match self.time_zone.from_local_datetime(&wall) {
            LocalResult::Single(time) => time.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
            LocalResult::None => self.end_of_gap(wall),
        }
    }

    /// The first instant whose wall-clock time is at or after `wall`, a time the clocks skipped:
    /// the moment they jumped. Found by bisection over the day around it, to the second.
    fn end_of_gap(&self, wall: NaiveDateTime) -> DateTime<Utc> {
        let at = |seconds: i64| DateTime::from_timestamp(seconds, 0).unwrap_or_default();
        let day = 26 * 3600;
        let wall_seconds = wall.and_utc().timestamp();
        let (mut before, mut after) = (wall_seconds - day, wall_seconds + day);
        while after - before > 1 {
            let middle = before + (after - before) / 2;
            if at(middle).with_timezone(&self.time_zone).naive_local() >= wall {
                after = middle;
            } else {
                before = middle;
            }
        }
        at(after)
    }
}

/// Checks the number of fields and every plain number against its field's range, so that the
/// message names the field: `field 3 (hour) "25" is out of range 0-23`.
fn check_fields(expression: &str) -> Result<(), String> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let names: &[(&str, u32, u32)] = match fields.len() {
        6 => &FIELDS,
        5 => &FIELDS[1..],
        count => {
            return Err(format!(
                "\"{expression}\" has {count} field(s): write six (second minute hour day-of-month month day-of-week, \"0 */5 * * * *\") or five (minute hour day-of-month month day-of-week, \"*/5 * * * *\")"
            ));
        }
    };
    for (index, (field, (name, low, high))) in fields.iter().zip(names).enumerate() {
        for item in field.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => (range, Some(step)),
                None => (item, None),
            };
            if let Some(step) = step
                && step.parse::<u32>().map_or(true, |step| step == 0)
            {
                return Err(format!(
                    "field {} ({name}) \"{item}\" has the step \"{step}\": a step is a whole number of 1 or more",
                    index + 1
                ));
            }
            for bound in range.split('-') {
                if let Ok(value) = bound.parse::<u32>()
                    && !(*low..=*high).contains(&value)
                {
                    return Err(format!(
                        "field {} ({name}) \"{bound}\" is out of range {low}-{high}",
                        index + 1
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// The next `count` fires after `from`, as RFC 3339 UTC.
    fn fires(expression: &str, zone: Option<&str>, from: &str, count: usize) -> Vec<String> {
        let schedule = CronSchedule::parse(expression, zone).unwrap();
        let mut at = utc(from);
        (0..count)
            .map(|_| {
                at = schedule.next_after(at).unwrap();
                at.to_rfc3339()
            })
            .collect()
    }

    #[test]
    fn next_fires_as_a_table() {
        let table: &[(&str, Option<&str>, &str, &[&str])] = &[
            // Every five minutes, six fields and five.
            (
                "0 */5 * * * *",
                None,
                "2026-01-01T00:02:30Z",
                &["2026-01-01T00:05:00+00:00", "2026-01-01T00:10:00+00:00"],
            ),
            (
                "*/5 * * * *",
                None,
                "2026-01-01T00:02:30Z",
                &["2026-01-01T00:05:00+00:00", "2026-01-01T00:10:00+00:00"],
            ),
            // Every second.
            (
                "*/1 * * * * *",
                None,
                "2026-01-01T00:00:00.500Z",
                &["2026-01-01T00:00:01+00:00", "2026-01-01T00:00:02+00:00"],
            ),
            // Weekdays at 09:00 in Paris (CET, UTC+1 in January): Friday, then Monday.
            (
                "0 0 9 * * MON-FRI",
                Some("Europe/Paris"),
                "2026-01-02T07:00:00Z",
                &["2026-01-02T08:00:00+00:00", "2026-01-05T08:00:00+00:00"],
            ),
            // The last day of February in a leap year, and in the year after.
            (
                "0 0 12 29 2 *",
                None,
                "2028-01-01T00:00:00Z",
                &["2028-02-29T12:00:00+00:00", "2032-02-29T12:00:00+00:00"],
            ),
            (
                "0 12 L 2 *",
                None,
                "2028-01-01T00:00:00Z",
                &["2028-02-29T12:00:00+00:00", "2029-02-28T12:00:00+00:00"],
            ),
            // Once a year.
            (
                "0 0 0 1 1 *",
                Some("America/New_York"),
                "2026-06-01T00:00:00Z",
                &["2027-01-01T05:00:00+00:00", "2028-01-01T05:00:00+00:00"],
            ),
            // Paris springs forward on 2026-03-29 at 02:00 → 03:00 (01:00 UTC): 02:30 does not
            // exist that day and fires once, at 03:00 local; the day after at 02:30 CEST.
            (
                "0 30 2 * * *",
                Some("Europe/Paris"),
                "2026-03-28T12:00:00Z",
                &["2026-03-29T01:00:00+00:00", "2026-03-30T00:30:00+00:00"],
            ),
            // Every 15 minutes across the jump: 01:45 CET, then 03:00 CEST (the skipped 02:xx
            // once, at the jump), then 03:15.
            (
                "0 */15 * * * *",
                Some("Europe/Paris"),
                "2026-03-29T00:40:00Z",
                &[
                    "2026-03-29T00:45:00+00:00",
                    "2026-03-29T01:00:00+00:00",
                    "2026-03-29T01:15:00+00:00",
                ],
            ),
            // Paris falls back on 2026-10-25 at 03:00 CEST → 02:00 CET: 02:30 occurs twice and
            // fires once, at the first (00:30 UTC).
            (
                "0 30 2 * * *",
                Some("Europe/Paris"),
                "2026-10-24T12:00:00Z",
                &["2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"],
            ),
            // Every 30 minutes through the repeated hour: 02:00 and 02:30 CEST, not again in CET.
            (
                "0 */30 * * * *",
                Some("Europe/Paris"),
                "2026-10-24T23:45:00Z",
                &[
                    "2026-10-25T00:00:00+00:00",
                    "2026-10-25T00:30:00+00:00",
                    "2026-10-25T02:00:00+00:00",
                ],
            ),
            // New York springs forward on 2026-03-08 at 02:00 → 03:00 (07:00 UTC).
            (
                "0 30 2 * * *",
                Some("America/New_York"),
                "2026-03-07T12:00:00Z",
                &["2026-03-08T07:00:00+00:00", "2026-03-09T06:30:00+00:00"],
            ),
            // And falls back on 2026-11-01 at 02:00 EDT → 01:00 EST: 01:30 once, in EDT.
            (
                "0 30 1 * * *",
                Some("America/New_York"),
                "2026-10-31T12:00:00Z",
                &["2026-11-01T05:30:00+00:00", "2026-11-02T06:30:00+00:00"],
            ),
        ];
        for (expression, zone, from, expected) in table {
            assert_eq!(
                fires(expression, *zone, from, expected.len()),
                *expected,
                "{expression} in {zone:?} from {from}"
            );
        }
    }

    #[test]
    fn a_host_started_in_the_repeated_hour_does_not_fire_it_again() {
        // 02:10 CET, the second pass through Paris's repeated hour: 02:30 already happened.
        assert_eq!(
            fires(
                "0 30 2 * * *",
                Some("Europe/Paris"),
                "2026-10-25T01:10:00Z",
                1
            ),
            ["2026-10-26T01:30:00+00:00"]
        );
    }

    #[test]
    fn mistakes_name_the_field() {
        let error = |expression: &str, zone: Option<&str>| {
            let error = CronSchedule::parse(expression, zone).unwrap_err();
            format!("{}: {}", error.field, error.message)
        };
        assert_eq!(
            error("0 0 25 * * *", None),
            "cron: field 3 (hour) \"25\" is out of range 0-23"
        );
        assert_eq!(
            error("61 * * * *", None),
            "cron: field 1 (minute) \"61\" is out of range 0-59"
        );
        assert_eq!(
            error("*/0 * * * *", None),
            "cron: field 1 (minute) \"*/0\" has the step \"0\": a step is a whole number of 1 or more"
        );
        assert!(error("* * *", None).starts_with("cron: \"* * *\" has 3 field(s): write six"));
        assert!(error("0 0 * * * * 2026", None).contains("has 7 field(s)"));
        assert!(error("0 0 * * BLAH", None).starts_with("cron: \"0 0 * * BLAH\": "));
        assert!(
            error("0 * * * *", Some("Europe/Pariss")).starts_with(
                "time_zone: \"Europe/Pariss\" is not a time zone of the IANA database"
            )
        );
    }

    #[test]
    fn a_clock_stepped_forward_fires_the_latest_missed_time_once() {
        let utc = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().to_utc();
        let every_five = CronSchedule::parse("*/5 * * * *", None).unwrap();
        let due = utc("2026-03-02T10:05:00Z");
        // Noticed on time: the time itself.
        assert_eq!(
            every_five.time_to_fire(due, utc("2026-03-02T10:05:00.3Z")),
            due
        );
        // Noticed 47 minutes late: the latest of the ten it skipped.
        assert_eq!(
            every_five.time_to_fire(due, utc("2026-03-02T10:52:10Z")),
            utc("2026-03-02T10:50:00Z")
        );
        // A host that booted at 1970 and then had its clock set: one fire, found at once.
        let every_second = CronSchedule::parse("* * * * * *", None).unwrap();
        assert_eq!(
            every_second.time_to_fire(utc("1970-01-01T00:00:01Z"), utc("2026-12-03T17:00:00.5Z")),
            utc("2026-12-03T17:00:00Z")
        );
        // In a time zone: weekdays at 09:00 in Paris, noticed the next Monday evening.
        let paris = CronSchedule::parse("0 0 9 * * MON-FRI", Some("Europe/Paris")).unwrap();
        assert_eq!(
            paris.time_to_fire(utc("2026-06-01T07:00:00Z"), utc("2026-06-08T18:00:00Z")),
            utc("2026-06-08T07:00:00Z")
        );
    }
}
