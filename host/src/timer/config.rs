//! `[application.trigger.timer]` and `[[trigger.timer]]`: as written, and validated.

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::limits::{
    DURATION_RANGE, MAX_ATTEMPTS_RANGE, MAX_IN_FLIGHT_RANGE, SPEEDUP_RANGE, check_duration,
};
use crate::rate_limit::validate_max_per_second;
use crate::timer::cron::CronSchedule;
use crate::validation::{ManifestError, Validation};
use crate::variable_templates::Template;

/// `[application.trigger.timer]`, as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTimerSettings {
    speedup: Option<f64>,
    /// Ours: the Redis server through which hosts running this app agree on who fires a tick.
    coordination: Option<String>,
}

/// `[application.trigger.timer]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerSettings {
    /// Divides every interval (1 when absent).
    pub speedup: f64,
    /// The default `coordination` server of every timer.
    pub coordination: Option<Template>,
}

/// One `[[trigger.timer]]`, as written (besides `id` and `component`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimerConfig {
    /// Spin's: whole seconds.
    interval_secs: Option<u64>,
    /// Ours: a sub-second interval in humantime syntax (`"250ms"`).
    interval: Option<String>,
    /// Ours: a cron expression, six fields with seconds or the standard five.
    cron: Option<String>,
    /// Ours: the IANA time zone `cron` is read in (UTC when absent).
    time_zone: Option<String>,
    /// Ours: this timer's coordination server, instead of the application's.
    coordination: Option<String>,
    /// Ours: `skip` (default), `buffer_one` or `allow`.
    overlap: Option<String>,
    /// Ours, with `overlap = "allow"`: how many runs at once.
    max_in_flight: Option<usize>,
    /// Ours: how far back ticks missed while no host ran are run at start.
    catch_up: Option<String>,
    /// Ours: the most a tick's fire is delayed, by an amount stable per tick.
    jitter: Option<String>,
    /// Ours: attempts at a failed tick (1 when absent).
    max_attempts: Option<u32>,
    /// Ours: the wait before a failed tick's second attempt, doubled for each later one.
    retry_backoff: Option<String>,
    /// Ours, with `overlap = "allow"`: runs started per second, at most.
    max_per_second: Option<f64>,
    /// Ours: RFC 3339 times before and after which the timer does not fire.
    start_at: Option<String>,
    end_at: Option<String>,
}

/// One `[[trigger.timer]]`, validated.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TimerConfig {
    /// When it fires.
    pub schedule: TimerSchedule,
    /// The Redis server (`{{ var }}` allowed) through which hosts running the app agree that
    /// each tick runs on one of them; `None`: every host fires every tick.
    pub coordination: Option<Template>,
    /// What happens when a tick comes while the previous run still goes, with how often a failed
    /// tick is tried, how its fire is spread and when the timer is active.
    pub policy: TimerPolicy,
}

/// A timer's policies: each field's default is how a timer without it behaves.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TimerPolicy {
    /// `overlap`: default [`Overlap::Skip`].
    pub overlap: Overlap,
    /// `catch_up`: ticks missed while no host ran, at most this long ago, run once each at start,
    /// oldest first, marked late. `None` (the default): missed ticks are not run.
    pub catch_up: Option<Duration>,
    /// `jitter`: each tick fires up to this much after it is due, by an amount that depends only
    /// on the trigger and the tick, so every host picks the same. Zero by default.
    pub jitter: Duration,
    /// `max_attempts`: attempts at a tick whose handler fails (1, the default: no retry).
    pub max_attempts: u32,
    /// `retry_backoff`: the wait before the second attempt, doubled before each later one up to
    /// [`MAX_RETRY_BACKOFF`] (default 1 s).
    pub retry_backoff: Duration,
    /// `start_at`: ticks due before it do not fire.
    pub start_at: Option<SystemTime>,
    /// `end_at`: ticks due after it do not fire; the timer stops there.
    pub end_at: Option<SystemTime>,
    /// `max_per_second`, with `overlap = "allow"`: runs started per second on this host, at
    /// most; a tick over it is skipped (reason `rate_limit`).
    pub max_per_second: Option<f64>,
}

impl Default for TimerPolicy {
    fn default() -> Self {
        TimerPolicy {
            overlap: Overlap::Skip,
            catch_up: None,
            jitter: Duration::ZERO,
            max_attempts: 1,
            retry_backoff: DEFAULT_RETRY_BACKOFF,
            start_at: None,
            end_at: None,
            max_per_second: None,
        }
    }
}

/// `retry_backoff`'s default.
const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two attempts at a tick, however often `retry_backoff` doubled.
pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(3600);
/// `max_in_flight`'s default with `overlap = "allow"`.
const DEFAULT_ALLOWED_IN_FLIGHT: usize = 4;

impl TimerPolicy {
    /// The wait after failed attempt `attempt` (from 1): `retry_backoff` doubled `attempt - 1`
    /// times, at most [`MAX_RETRY_BACKOFF`] (or `retry_backoff`, if that is longer).
    pub fn backoff_after(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.retry_backoff
            .checked_mul(1 << doublings)
            .unwrap_or(Duration::MAX)
            .min(MAX_RETRY_BACKOFF.max(self.retry_backoff))
    }

    /// Whether a tick due at `scheduled_at` is within `start_at` and `end_at`.
    pub fn active_at(&self, scheduled_at: SystemTime) -> bool {
        self.start_at.is_none_or(|start| scheduled_at >= start)
            && self.end_at.is_none_or(|end| scheduled_at <= end)
    }
}

/// What a tick that comes while the previous run still goes does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overlap {
    /// `skip`: it is skipped and logged (the default).
    Skip,
    /// `buffer_one`: it waits and runs when the run ends; one tick waits at most, and a tick
    /// that comes while one waits is skipped.
    BufferOne,
    /// `allow`: it runs beside the others, up to `max_in_flight` at once (default 4); past that
    /// it is skipped.
    Allow {
        /// How many runs may go at once.
        max_in_flight: usize,
    },
}

impl Overlap {
    /// How many runs of the trigger may go at once.
    pub fn max_in_flight(self) -> usize {
        match self {
            Overlap::Allow { max_in_flight } => max_in_flight,
            Overlap::Skip | Overlap::BufferOne => 1,
        }
    }
}

/// When a timer fires.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TimerSchedule {
    /// `interval_secs` or `interval`: every interval from the host's start.
    Interval {
        /// The interval as written, before `speedup`.
        interval: Duration,
        /// `[application.trigger.timer] speedup`: divides every interval.
        speedup: f64,
    },
    /// `cron`, in `time_zone`: at the wall-clock times the expression names. Boxed: a parsed
    /// expression is far larger than an interval.
    Cron(Box<CronSchedule>),
}

impl TimerConfig {
    /// The schedule in words, as a tick carries it: `every 10s`, or
    /// `cron 0 30 9 * * MON-FRI in Europe/Paris`.
    pub fn describe(&self) -> String {
        match &self.schedule {
            TimerSchedule::Interval { .. } => format!(
                "every {}",
                humantime::format_duration(self.effective_interval().unwrap_or_default())
            ),
            TimerSchedule::Cron(cron) => {
                format!("cron {} in {}", cron.expression(), cron.time_zone())
            }
        }
    }

    /// The interval at which the trigger fires, `speedup` applied; `None` for a cron schedule.
    pub fn effective_interval(&self) -> Option<Duration> {
        match &self.schedule {
            TimerSchedule::Interval { interval, speedup } => Some(interval.div_f64(*speedup)),
            TimerSchedule::Cron(_) => None,
        }
    }
}

/// `speedup`, checked: a positive number in [`SPEEDUP_RANGE`] (1 when absent).
pub fn validate_settings(
    raw: RawTimerSettings,
    validation: &Validation,
) -> Result<TimerSettings, ManifestError> {
    let speedup = raw.speedup.unwrap_or(1.0);
    let location = "application.trigger.timer.speedup";
    if !(speedup.is_finite() && speedup > 0.0) {
        return Err(validation.error(
            location,
            format!("{speedup} is not a positive number: `speedup = 2` runs timers twice as often"),
        ));
    }
    let coordination = raw
        .coordination
        .map(|address| validation.template(&address, "application.trigger.timer.coordination"))
        .transpose()?;
    Ok(TimerSettings {
        speedup: validation.in_range(speedup, &SPEEDUP_RANGE, location)?,
        coordination,
    })
}

/// The schedule: exactly one of `interval_secs`, `interval` (in
/// [`DURATION_RANGE`](crate::limits::DURATION_RANGE)) and `cron` (with `time_zone`).
pub fn validate(
    raw: RawTimerConfig,
    settings: &TimerSettings,
    location: &str,
    validation: &Validation,
) -> Result<TimerConfig, ManifestError> {
    let coordination = match &raw.coordination {
        Some(address) => Some(validation.template(address, &format!("{location}.coordination"))?),
        None => settings.coordination.clone(),
    };
    let policy = validate_policy(&raw, location, validation)?;
    let schedule = validate_schedule(raw, settings.speedup, location, validation)?;
    let config = TimerConfig {
        schedule,
        coordination,
        policy,
    };
    check_against_gap(&config, location, validation)?;
    Ok(config)
}

/// The most ticks `catch_up` may run at one start: a window longer than this many ticks is a
/// mistake (an interval of 1 ms caught up over a week is 600 million runs).
const MAX_CATCH_UP_TICKS: u128 = 10_000;

/// `jitter` shorter than the shortest time between two ticks (so ticks never fire out of
/// order), and `catch_up` at most [`MAX_CATCH_UP_TICKS`] of them. For a cron schedule, the
/// shortest gap among its next hundred times.
fn check_against_gap(
    config: &TimerConfig,
    location: &str,
    validation: &Validation,
) -> Result<(), ManifestError> {
    let gap = match &config.schedule {
        TimerSchedule::Interval { .. } => config.effective_interval(),
        TimerSchedule::Cron(cron) => cron.shortest_gap(100),
    };
    let Some(gap) = gap.filter(|gap| !gap.is_zero()) else {
        return Ok(());
    };
    let policy = &config.policy;
    let shown = |duration: Duration| humantime::format_duration(duration).to_string();
    if !policy.jitter.is_zero() && policy.jitter >= gap {
        return Err(field_error(
            validation,
            location,
            "jitter",
            format!(
                "{} is not shorter than the time between two ticks ({}), so ticks could fire out of order: shorten `jitter`",
                shown(policy.jitter),
                shown(gap)
            ),
        ));
    }
    if let Some(window) = policy.catch_up
        && window.as_nanos() / gap.as_nanos() > MAX_CATCH_UP_TICKS
    {
        return Err(field_error(
            validation,
            location,
            "catch_up",
            format!(
                "{} holds more than {MAX_CATCH_UP_TICKS} ticks {} apart, each run one at a time at start: shorten `catch_up` to at most {}",
                shown(window),
                shown(gap),
                shown(gap * MAX_CATCH_UP_TICKS as u32)
            ),
        ));
    }
    Ok(())
}

/// `overlap` (with `max_in_flight`), `catch_up`, `jitter`, `max_attempts` (with
/// `retry_backoff`), `start_at` and `end_at`.
fn validate_policy(
    raw: &RawTimerConfig,
    location: &str,
    validation: &Validation,
) -> Result<TimerPolicy, ManifestError> {
    let err = |field: &str, message: String| field_error(validation, location, field, message);
    let duration = |text: &Option<String>, field: &str, examples: &str| {
        text.as_deref()
            .map(|text| validation.duration(text, &format!("{location}.{field}"), examples))
            .transpose()
    };
    let overlap = match (raw.overlap.as_deref(), raw.max_in_flight) {
        (None | Some("skip"), None) => Overlap::Skip,
        (Some("buffer_one"), None) => Overlap::BufferOne,
        (Some("allow"), max_in_flight) => Overlap::Allow {
            max_in_flight: validation.count(
                max_in_flight.unwrap_or(DEFAULT_ALLOWED_IN_FLIGHT),
                &MAX_IN_FLIGHT_RANGE,
                &format!("{location}.max_in_flight"),
                "the default with `overlap = \"allow\"` is 4",
            )?,
        },
        (None | Some("skip" | "buffer_one"), Some(_)) => {
            return Err(err(
                "max_in_flight",
                "applies to `overlap = \"allow\"` only, since `skip` and `buffer_one` run one tick at a time: add `overlap = \"allow\"` or remove `max_in_flight`".into(),
            ));
        }
        (Some(other), _) => {
            return Err(err(
                "overlap",
                format!(
                    "\"{other}\" is not an overlap policy: write \"skip\" (the default), \"buffer_one\" or \"allow\""
                ),
            ));
        }
    };
    let max_attempts = validation.count(
        raw.max_attempts.unwrap_or(1),
        &MAX_ATTEMPTS_RANGE,
        &format!("{location}.max_attempts"),
        "1, the default: no retry",
    )?;
    let retry_backoff = duration(&raw.retry_backoff, "retry_backoff", "\"1s\" or \"30s\"")?;
    if retry_backoff.is_some() && max_attempts == 1 {
        return Err(err(
            "retry_backoff",
            "applies when a failed tick is tried again: add `max_attempts = 3` or remove `retry_backoff`".into(),
        ));
    }
    let time = |text: &Option<String>, field: &str| -> Result<Option<SystemTime>, ManifestError> {
        text.as_deref()
            .map(|text| {
                chrono::DateTime::parse_from_rfc3339(text)
                    .map(SystemTime::from)
                    .map_err(|error| {
                        err(
                            field,
                            format!("\"{text}\" is not an RFC 3339 time ({error}): write e.g. \"2027-01-01T09:00:00Z\" or \"2027-01-01T10:00:00+01:00\""),
                        )
                    })
            })
            .transpose()
    };
    let (start_at, end_at) = (
        time(&raw.start_at, "start_at")?,
        time(&raw.end_at, "end_at")?,
    );
    if let (Some(start), Some(end)) = (start_at, end_at)
        && start >= end
    {
        return Err(err(
            "end_at",
            "is not after `start_at`, so the timer would never fire: move `end_at` later".into(),
        ));
    }
    let max_per_second = match (raw.max_per_second, overlap) {
        (None, _) => None,
        (Some(_), Overlap::Allow { .. }) => {
            validate_max_per_second(raw.max_per_second, None, location, validation)?
                .map(|limit| limit.per_second)
        }
        (Some(_), _) => {
            return Err(err(
                "max_per_second",
                "applies to `overlap = \"allow\"` only, since `skip` and `buffer_one` run one tick at a time: add `overlap = \"allow\"` or remove `max_per_second`".into(),
            ));
        }
    };
    Ok(TimerPolicy {
        max_per_second,
        overlap,
        catch_up: duration(&raw.catch_up, "catch_up", "\"10m\" or \"1h\"")?,
        jitter: duration(&raw.jitter, "jitter", "\"500ms\" or \"5s\"")?.unwrap_or_default(),
        max_attempts,
        retry_backoff: retry_backoff.unwrap_or(DEFAULT_RETRY_BACKOFF),
        start_at,
        end_at,
    })
}

/// `cron` (with `time_zone`), `interval_secs` or `interval`: exactly one.
fn validate_schedule(
    raw: RawTimerConfig,
    speedup: f64,
    location: &str,
    validation: &Validation,
) -> Result<TimerSchedule, ManifestError> {
    let err = |field: &str, message: String| field_error(validation, location, field, message);
    if let Some(expression) = raw.cron {
        if raw.interval_secs.is_some() || raw.interval.is_some() {
            return Err(err("", SEVERAL_SCHEDULES.into()));
        }
        if speedup != 1.0 {
            return Err(err(
                "cron",
                format!(
                    "`speedup` ({speedup}, in [application.trigger.timer]) applies to intervals only; a cron schedule fires at the times it names: remove `speedup` or use `interval`"
                ),
            ));
        }
        return CronSchedule::parse(&expression, raw.time_zone.as_deref())
            .map(|schedule| TimerSchedule::Cron(Box::new(schedule)))
            .map_err(|error| err(error.field, error.message));
    }
    if raw.time_zone.is_some() {
        return Err(err(
            "time_zone",
            "a time zone applies to a `cron` schedule only: add `cron = \"0 0 9 * * *\"` or remove `time_zone`".into(),
        ));
    }
    let interval = validate_interval(raw.interval_secs, raw.interval, location, validation)?;
    // Both are in range, so this neither overflows nor reaches zero; under 1 ms the timer would
    // be due again before a handler could start.
    let effective = interval.div_f64(speedup);
    if effective < *DURATION_RANGE.start() {
        return Err(err(
            "",
            format!(
                "the interval ({}) divided by `speedup` ({speedup}) is {}, under the 1ms minimum: lengthen the interval or lower `speedup`",
                humantime::format_duration(interval),
                humantime::format_duration(effective)
            ),
        ));
    }
    Ok(TimerSchedule::Interval { interval, speedup })
}

const SEVERAL_SCHEDULES: &str =
    "set one schedule: `cron`, `interval_secs` or `interval`, not several";

/// Spin's `interval_secs` (whole seconds) or our `interval` (`"250ms"`): exactly one.
fn validate_interval(
    interval_secs: Option<u64>,
    interval: Option<String>,
    location: &str,
    validation: &Validation,
) -> Result<Duration, ManifestError> {
    let err = |field: &str, message: String| field_error(validation, location, field, message);
    match (interval_secs, interval) {
        (Some(_), Some(_)) => Err(err("", SEVERAL_SCHEDULES.into())),
        (None, None) => Err(err(
            "",
            "missing the schedule: add `interval_secs = 5`, `interval = \"250ms\"` or `cron = \"0 */5 * * * *\"`".into(),
        )),
        (Some(0), None) => Err(err(
            "interval_secs",
            "the interval must be at least 1 second; for less, use `interval = \"250ms\"`".into(),
        )),
        (Some(secs), None) => {
            let interval = Duration::from_secs(secs);
            check_duration(&format!("{secs}s"), interval)
                .map_err(|message| err("interval_secs", message))?;
            Ok(interval)
        }
        (None, Some(text)) => validation.duration(
            &text,
            &format!("{location}.interval"),
            "\"250ms\", \"2s\" or \"1m 30s\"",
        ),
    }
}

/// An error at `field` of the trigger at `location` (at the trigger itself when `field` is
/// empty).
fn field_error(
    validation: &Validation,
    location: &str,
    field: &str,
    message: String,
) -> ManifestError {
    if field.is_empty() {
        validation.error(location, message)
    } else {
        validation.error(&format!("{location}.{field}"), message)
    }
}
