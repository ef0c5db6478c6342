//! `[application.trigger.redis-stream]` and `[[trigger.redis-stream]]`: as written, and
//! validated.

use std::time::Duration;

use serde::Deserialize;

use crate::limits::{BATCH_SIZE_RANGE, MAX_ATTEMPTS_RANGE, MAX_IN_FLIGHT_RANGE};
use crate::redis_address::trigger_address;
use crate::template::Template;
use crate::validation::{ManifestError, Validation};

/// One `[[trigger.redis-stream]]`, as written (besides `id` and `component`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStreamConfig {
    stream: String,
    address: Option<String>,
    group: Option<String>,
    consumer: Option<String>,
    max_in_flight: Option<usize>,
    max_attempts: Option<u32>,
    dead_letter: Option<String>,
    claim_idle: Option<String>,
    batch_size: Option<usize>,
    batch_wait: Option<String>,
}

/// One `[[trigger.redis-stream]]`, validated: a consumer in a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// The stream key.
    pub stream: Template,
    /// The server: the trigger's own or the application's.
    pub address: Template,
    /// The consumer group; `None`: the application's name.
    pub group: Option<Template>,
    /// This process's consumer name in the group; `None`: the host name and process id.
    pub consumer: Option<Template>,
    /// How many entries the component handles at once (default 1).
    pub max_in_flight: usize,
    /// How many times an entry is tried before it goes to the dead-letter stream (default 5).
    pub max_attempts: u32,
    /// Where entries that failed `max_attempts` times go; `None`: `<stream>.dead`.
    pub dead_letter: Option<Template>,
    /// How long an entry may stay unacknowledged by its consumer before another claims it
    /// (default 30 s).
    pub claim_idle: Duration,
    /// Entries per call for a component that takes batches; `None`: 100 for such a component.
    /// A component that takes one entry at a time may only leave it out or write 1.
    pub batch_size: Option<usize>,
    /// How long a batch that is not full may wait for more entries before its call (default 0:
    /// call with what has come). Only for a component that takes batches.
    pub batch_wait: Duration,
}

pub fn validate(
    raw: RawStreamConfig,
    default_address: Option<&Template>,
    location: &str,
    validation: &Validation,
) -> Result<StreamConfig, ManifestError> {
    let err =
        |field: &str, message: String| validation.error(&format!("{location}.{field}"), message);
    if raw.stream.trim().is_empty() {
        return Err(err(
            "stream",
            "the stream is empty: write e.g. `stream = \"orders\"`".into(),
        ));
    }
    let stream = validation.template(&raw.stream, &format!("{location}.stream"))?;
    let address = trigger_address(
        raw.address,
        default_address,
        location,
        "application.trigger.redis-stream",
        validation,
    )?;
    let optional_template = |value: Option<String>, field: &str| {
        value
            .map(|text| {
                if text.trim().is_empty() {
                    Err(err(field, "is empty: leave it out for the default".into()))
                } else {
                    validation.template(&text, &format!("{location}.{field}"))
                }
            })
            .transpose()
    };
    let group = optional_template(raw.group, "group")?;
    let consumer = optional_template(raw.consumer, "consumer")?;
    let dead_letter = optional_template(raw.dead_letter, "dead_letter")?;
    let max_in_flight = raw.max_in_flight.unwrap_or(1);
    if max_in_flight == 0 {
        return Err(err(
            "max_in_flight",
            "must be at least 1 (the default: one entry at a time)".into(),
        ));
    }
    validation.in_range(
        max_in_flight,
        &MAX_IN_FLIGHT_RANGE,
        &format!("{location}.max_in_flight"),
    )?;
    let max_attempts = raw.max_attempts.unwrap_or(5);
    if max_attempts == 0 {
        return Err(err(
            "max_attempts",
            "must be at least 1 (1: no retry; the default is 5)".into(),
        ));
    }
    validation.in_range(
        max_attempts,
        &MAX_ATTEMPTS_RANGE,
        &format!("{location}.max_attempts"),
    )?;
    let claim_idle = match raw.claim_idle {
        None => Duration::from_secs(30),
        Some(text) => validation.duration(
            &text,
            &format!("{location}.claim_idle"),
            "\"30s\" or \"2m\"",
        )?,
    };
    if let Some(batch_size) = raw.batch_size {
        if batch_size == 0 {
            return Err(err(
                "batch_size",
                "must be at least 1 (the default, for a handler taking a `Batch`, is 100)".into(),
            ));
        }
        validation.in_range(
            batch_size,
            &BATCH_SIZE_RANGE,
            &format!("{location}.batch_size"),
        )?;
    }
    let batch_wait = match raw.batch_wait {
        None => Duration::ZERO,
        Some(text) => validation.duration(
            &text,
            &format!("{location}.batch_wait"),
            "\"50ms\" or \"1s\"",
        )?,
    };
    Ok(StreamConfig {
        batch_size: raw.batch_size,
        batch_wait,
        stream,
        address,
        group,
        consumer,
        max_in_flight,
        max_attempts,
        dead_letter,
        claim_idle,
    })
}
