//! `[application.trigger.redis]` and `[[trigger.redis]]`: as written, and validated.

use serde::Deserialize;

use crate::limits::MAX_IN_FLIGHT_RANGE;
use crate::rate_limit::{MaxPerSecond, validate_max_per_second};
use crate::redis_address::trigger_address;
use crate::validation::{ManifestError, Validation};
use crate::variable_templates::Template;

/// One `[[trigger.redis]]`, as written (besides `id` and `component`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedisConfig {
    channel: String,
    address: Option<String>,
    /// Ours: how many messages the component handles at once (default 1, publish order).
    max_in_flight: Option<usize>,
    /// Ours: how many messages it starts per second, at most.
    max_per_second: Option<f64>,
    /// Ours: whether that limit is shared by every host running the app.
    max_per_second_shared: Option<bool>,
}

/// One `[[trigger.redis]]`, validated.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The channel, or a glob pattern (`orders.*`) to subscribe by pattern.
    pub channel: Template,
    /// The server: the trigger's own or the application's.
    pub address: Template,
    /// How many messages the component handles at once: 1 (the default) keeps publish order.
    pub max_in_flight: usize,
    /// `max_per_second`: how many messages it starts per second, at most; `None` (the
    /// default): as many as come. Messages over it wait (in the server's output buffer, as
    /// when handlers fall behind).
    pub max_per_second: Option<MaxPerSecond>,
}

pub fn validate(
    raw: RawRedisConfig,
    default_address: Option<&Template>,
    location: &str,
    validation: &Validation,
) -> Result<RedisConfig, ManifestError> {
    let channel = validation.template(&raw.channel, &format!("{location}.channel"))?;
    if raw.channel.trim().is_empty() {
        return Err(validation.error(
            &format!("{location}.channel"),
            "the channel is empty: write e.g. `channel = \"orders\"` or a pattern like `\"orders.*\"`".into(),
        ));
    }
    let address = trigger_address(
        raw.address,
        default_address,
        location,
        "application.trigger.redis",
        validation,
    )?;
    let max_in_flight = validation.count(
        raw.max_in_flight.unwrap_or(1),
        &MAX_IN_FLIGHT_RANGE,
        &format!("{location}.max_in_flight"),
        "the default, which keeps publish order",
    )?;
    Ok(RedisConfig {
        channel,
        address,
        max_in_flight,
        max_per_second: validate_max_per_second(
            raw.max_per_second,
            raw.max_per_second_shared,
            location,
            validation,
        )?,
    })
}
