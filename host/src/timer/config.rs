//! `[application.trigger.timer]` and `[[trigger.timer]]`: as written, and validated.

use std::time::Duration;

use serde::Deserialize;

use crate::limits::{DURATION_RANGE, SPEEDUP_RANGE, check_duration};
use crate::timer::cron::CronSchedule;
use crate::validation::{ManifestError, Validation};
use crate::variable_templates::Template;

mod policy;

pub use policy::{Overlap, TimerPolicy};
use policy::{check_against_gap, validate_policy};

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
