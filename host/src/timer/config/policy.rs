//! A timer's policies (`overlap`, `max_in_flight`, `max_attempts`, `retry_backoff`, `jitter`,
//! `catch_up`, `start_at`, `end_at`, `max_per_second`): the validated form and its checks.

use std::time::{Duration, SystemTime};

use super::{RawTimerConfig, TimerConfig, TimerSchedule, field_error};
use crate::limits::{MAX_ATTEMPTS_RANGE, MAX_IN_FLIGHT_RANGE};
use crate::rate_limit::validate_max_per_second;
use crate::validation::{ManifestError, Validation};

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
        let backoff = crate::retry_backoff::RetryBackoff {
            first: self.retry_backoff,
            max: MAX_RETRY_BACKOFF,
        };
        backoff.after(attempt)
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

/// The most ticks `catch_up` may run at one start: a window longer than this many ticks is a
/// mistake (an interval of 1 ms caught up over a week is 600 million runs).
const MAX_CATCH_UP_TICKS: u128 = 10_000;

/// `jitter` shorter than the shortest time between two ticks (so ticks never fire out of
/// order), and `catch_up` at most [`MAX_CATCH_UP_TICKS`] of them. For a cron schedule, the
/// shortest gap among its next hundred times.
pub(super) fn check_against_gap(
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
pub(super) fn validate_policy(
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
