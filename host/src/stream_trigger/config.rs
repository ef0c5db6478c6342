//! `[application.trigger.redis-stream]` and `[[trigger.redis-stream]]`: as written, and
//! validated.

use std::time::Duration;

use serde::Deserialize;

use crate::limits::{BATCH_SIZE_RANGE, MAX_ATTEMPTS_RANGE, MAX_IN_FLIGHT_RANGE};
use crate::rate_limit::{MaxPerSecond, validate_max_per_second};
use crate::redis_address::trigger_address;
use crate::validation::{ManifestError, Validation};
use crate::variable_templates::Template;

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
    max_per_second: Option<f64>,
    max_per_second_shared: Option<bool>,
    retry_backoff: Option<String>,
    max_retry_backoff: Option<String>,
}

/// One `[[trigger.redis-stream]]`, validated: a consumer in a consumer group.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
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
    /// `max_per_second`: how many entries it reads (and so starts) per second, at most; `None`
    /// (the default): as many as its slots take. Entries over it wait in the stream.
    pub max_per_second: Option<MaxPerSecond>,
    /// `retry_backoff`: the wait before a failed entry's second attempt, doubled before each
    /// later one (default 100 ms).
    pub retry_backoff: Duration,
    /// `max_retry_backoff`: the longest wait between two attempts, however often
    /// `retry_backoff` doubled (default 5 s).
    pub max_retry_backoff: Duration,
}

/// `claim_idle`'s default.
const SECS_30: Duration = Duration::from_secs(30);
/// `retry_backoff`'s and `max_retry_backoff`'s defaults: the waits of a host that was never
/// told otherwise, 100 ms doubling to 5 s.
const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_millis(100);
const DEFAULT_MAX_RETRY_BACKOFF: Duration = Duration::from_secs(5);

/// Checks one `[[trigger.redis-stream]]`; each error names its field.
pub fn validate(
    raw: RawStreamConfig,
    default_address: Option<&Template>,
    location: &str,
    validation: &Validation,
) -> Result<StreamConfig, ManifestError> {
    let at = |field: &str| format!("{location}.{field}");
    let optional_name = |value: Option<String>, field: &str| {
        let if_blank = "is empty: leave it out for the default";
        value
            .map(|text| validation.non_blank_template(&text, &at(field), if_blank))
            .transpose()
    };
    let duration = |text: Option<String>, default, field: &str, examples| {
        validation.duration_or(text.as_deref(), default, &at(field), examples)
    };
    if let Some(batch_size) = raw.batch_size {
        let hint = "the default, for a handler taking a `Batch`, is 100";
        validation.count(batch_size, &BATCH_SIZE_RANGE, &at("batch_size"), hint)?;
    }
    let max_attempts = validation.count(
        raw.max_attempts.unwrap_or(5),
        &MAX_ATTEMPTS_RANGE,
        &at("max_attempts"),
        "1: no retry; the default is 5",
    )?;
    let backoff_fields = [
        ("retry_backoff", raw.retry_backoff.is_some()),
        ("max_retry_backoff", raw.max_retry_backoff.is_some()),
    ];
    if let Some((field, _)) = backoff_fields
        .iter()
        .find(|(_, set)| *set && max_attempts == 1)
    {
        return Err(validation.error(
            &at(field),
            format!(
                "applies when a failed entry is tried again: raise `max_attempts` or remove `{field}`"
            ),
        ));
    }
    let retry_backoff_set = raw.retry_backoff.is_some();
    let retry_backoff = duration(
        raw.retry_backoff,
        DEFAULT_RETRY_BACKOFF,
        "retry_backoff",
        "\"100ms\" or \"1s\"",
    )?;
    let max_retry_backoff = duration(
        raw.max_retry_backoff,
        DEFAULT_MAX_RETRY_BACKOFF.max(retry_backoff),
        "max_retry_backoff",
        "\"5s\" or \"1m\"",
    )?;
    if max_retry_backoff < retry_backoff {
        let which = if retry_backoff_set {
            ""
        } else {
            ", its default"
        };
        return Err(validation.error(
            &at("max_retry_backoff"),
            format!(
                "{max_retry_backoff:?} is shorter than `retry_backoff` ({retry_backoff:?}{which}): the longest wait is at least the first"
            ),
        ));
    }
    Ok(StreamConfig {
        stream: validation.non_blank_template(
            &raw.stream,
            &at("stream"),
            "the stream is empty: write e.g. `stream = \"orders\"`",
        )?,
        address: trigger_address(
            raw.address,
            default_address,
            location,
            "application.trigger.redis-stream",
            validation,
        )?,
        group: optional_name(raw.group, "group")?,
        consumer: optional_name(raw.consumer, "consumer")?,
        dead_letter: optional_name(raw.dead_letter, "dead_letter")?,
        max_in_flight: validation.count(
            raw.max_in_flight.unwrap_or(1),
            &MAX_IN_FLIGHT_RANGE,
            &at("max_in_flight"),
            "the default: one entry at a time",
        )?,
        max_attempts,
        retry_backoff,
        max_retry_backoff,
        claim_idle: duration(raw.claim_idle, SECS_30, "claim_idle", "\"30s\" or \"2m\"")?,
        batch_size: raw.batch_size,
        batch_wait: duration(
            raw.batch_wait,
            Duration::ZERO,
            "batch_wait",
            "\"50ms\" or \"1s\"",
        )?,
        max_per_second: validate_max_per_second(
            raw.max_per_second,
            raw.max_per_second_shared,
            location,
            validation,
        )?,
    })
}
