//! `[application.trigger.timer]` and `[[trigger.timer]]`: as written, and validated.

use std::time::Duration;

use serde::Deserialize;

use crate::limits::{DURATION_RANGE, SPEEDUP_RANGE, check_duration};
use crate::validation::{ManifestError, Validation};

/// `[application.trigger.timer]`, as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTimerSettings {
    speedup: Option<f64>,
}

/// One `[[trigger.timer]]`, as written (besides `id` and `component`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimerConfig {
    /// Spin's: whole seconds.
    interval_secs: Option<u64>,
    /// Ours: a sub-second interval in humantime syntax (`"250ms"`).
    interval: Option<String>,
}

/// One `[[trigger.timer]]`, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimerConfig {
    /// The interval as written, before `speedup`.
    pub interval: Duration,
    /// `[application.trigger.timer] speedup`: divides every interval.
    pub speedup: f64,
}

impl TimerConfig {
    /// The interval at which the trigger fires, `speedup` applied.
    pub fn effective_interval(&self) -> Duration {
        self.interval.div_f64(self.speedup)
    }
}

/// `speedup`, checked: a positive number in [`SPEEDUP_RANGE`] (1 when absent).
pub fn validate_settings(
    raw: RawTimerSettings,
    validation: &Validation,
) -> Result<f64, ManifestError> {
    let speedup = raw.speedup.unwrap_or(1.0);
    let location = "application.trigger.timer.speedup";
    if !(speedup.is_finite() && speedup > 0.0) {
        return Err(validation.error(
            location,
            format!("{speedup} is not a positive number: `speedup = 2` runs timers twice as often"),
        ));
    }
    validation.in_range(speedup, &SPEEDUP_RANGE, location)
}

/// The interval: `interval_secs` or `interval`, not both, in
/// [`DURATION_RANGE`](crate::limits::DURATION_RANGE).
pub fn validate(
    raw: RawTimerConfig,
    speedup: f64,
    location: &str,
    validation: &Validation,
) -> Result<TimerConfig, ManifestError> {
    let err = |field: &str, message: String| {
        let at = if field.is_empty() {
            location.to_owned()
        } else {
            format!("{location}.{field}")
        };
        validation.error(&at, message)
    };
    let interval = match (raw.interval_secs, raw.interval) {
        (Some(_), Some(_)) => {
            return Err(err(
                "",
                "set either `interval_secs` or `interval`, not both".into(),
            ));
        }
        (None, None) => {
            return Err(err(
                "",
                "missing the interval: add `interval_secs = 5` or `interval = \"250ms\"`".into(),
            ));
        }
        (Some(0), None) => {
            return Err(err(
                "interval_secs",
                "the interval must be at least 1 second; for less, use `interval = \"250ms\"`"
                    .into(),
            ));
        }
        (Some(secs), None) => {
            let interval = Duration::from_secs(secs);
            check_duration(&format!("{secs}s"), interval)
                .map_err(|message| err("interval_secs", message))?;
            interval
        }
        (None, Some(text)) => validation.duration(
            &text,
            &format!("{location}.interval"),
            "\"250ms\", \"2s\" or \"1m 30s\"",
        )?,
    };
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
    Ok(TimerConfig { interval, speedup })
}
