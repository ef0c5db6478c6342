//! The Redis server a trigger reads from: `address` in `[application.trigger.<type>]` and in
//! each trigger, as the Redis and Redis Streams triggers both take it, validated and rendered.

use anyhow::Context;
use serde::Deserialize;

use crate::allowed_hosts::redact;
use crate::validation::{ManifestError, Validation};
use crate::variable_templates::Template;
use crate::variables::ResolvedVariables;

/// `[application.trigger.redis]`, as written; `[application.trigger.redis-stream]` has the
/// same shape.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAddressSettings {
    address: Option<String>,
}

/// The application's default server: the `address` template, when set.
pub fn validate_address_settings(
    raw: RawAddressSettings,
    location: &str,
    validation: &Validation,
) -> Result<Option<Template>, ManifestError> {
    raw.address
        .map(|address| validation.template(&address, &format!("{location}.address")))
        .transpose()
}

/// A trigger's server: its own `address`, else the application's; one of them must be set.
pub fn trigger_address(
    address: Option<String>,
    default: Option<&Template>,
    location: &str,
    settings_table: &str,
    validation: &Validation,
) -> Result<Template, ManifestError> {
    match address {
        Some(address) => validation.template(&address, &format!("{location}.address")),
        None => default.cloned().ok_or_else(|| {
            validation.error(
                location,
                format!("no Redis address: set `address` here or in [{settings_table}]"),
            )
        }),
    }
}

/// A trigger's server address, its variables resolved and checked to be a Redis URL; errors
/// name the trigger (`what`) and never show a password.
pub(crate) fn render_address(
    variables: &ResolvedVariables,
    address: &Template,
    what: &str,
) -> anyhow::Result<String> {
    let address = variables
        .render(address)
        .with_context(|| format!("{what}: rendering its address"))?;
    redis::Client::open(address.as_str())
        .with_context(|| format!("{what}: invalid address {}", redact(&address)))?;
    Ok(address)
}

/// The validation half of a Redis trigger type's [`TriggerType`](crate::trigger_type::TriggerType)
/// impl, the same for both Redis triggers: the application's default server in
/// `[application.trigger.<NAME>]`, each trigger checked by its module's `config::validate`, and
/// `max_in_flight` instances live at once.
macro_rules! redis_trigger_validation {
    ($name:literal, $raw_config:ty, $config:ty) => {
        const NAME: &'static str = $name;
        type RawSettings = $crate::redis_address::RawAddressSettings;
        /// The application's default server.
        type Settings = Option<$crate::variable_templates::Template>;
        type RawConfig = $raw_config;
        type Config = $config;

        fn validate_settings(
            raw: Self::RawSettings,
            validation: &$crate::validation::Validation,
        ) -> Result<Self::Settings, $crate::validation::ManifestError> {
            $crate::redis_address::validate_address_settings(
                raw,
                concat!("application.trigger.", $name),
                validation,
            )
        }

        fn validate(
            raw: Self::RawConfig,
            address: &Self::Settings,
            location: &str,
            validation: &$crate::validation::Validation,
        ) -> Result<Self::Config, $crate::validation::ManifestError> {
            config::validate(raw, address.as_ref(), location, validation)
        }

        fn live_instances(config: &Self::Config) -> usize {
            config.max_in_flight
        }
    };
}
pub(crate) use redis_trigger_validation;
