//! The one list of the trigger types this host runs, above every trigger module: it makes the
//! loaders, the app model and the runtime know each type. Adding a type is its own module (see
//! [`crate::trigger_type`]) and a line in `registered_trigger_types!` below (and, for `spin up` to
//! run it through our plugin, a plugin name `cargo xtask plugin` packages).

use std::collections::BTreeSet;

use crate::limits::HandlerLimits;
use crate::trigger_type::{BuildContext, RunTrigger, TriggerSpec, TriggerType};
use crate::validation::{ManifestError, RawComponentRef, RawTables, Validation, trigger_location};

/// One trigger of the app, of any type.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Trigger {
    /// The trigger's id: Spin's (locked app), or `id` / `<type>-<n>` (manifest).
    pub id: String,
    /// The id of the component it runs.
    pub component: String,
    /// Limits on each of its handler calls, where the trigger sets its own.
    pub limits: HandlerLimits,
    /// What its type needs: a timer's interval, a Redis channel, a stream and its group.
    pub config: TriggerConfig,
}

/// A trigger type's validated configuration ([`TimerConfig`](crate::app::TimerConfig),
/// [`RedisConfig`](crate::app::RedisConfig), [`StreamConfig`](crate::app::StreamConfig)),
/// as [`App::triggers_of`](crate::App::triggers_of) picks it out of a [`TriggerConfig`].
pub trait TypedConfig: Sized + 'static {
    /// The configuration, if `config` is of this type.
    fn of(config: &TriggerConfig) -> Option<&Self>;
}

/// Registers the trigger types: `Variant(RunningType)`, one per type. Generates
/// [`TriggerConfig`] (one variant per type) and the functions the loaders and the runtime call.
macro_rules! registered_trigger_types {
    ($($variant:ident($ty:ty)),+ $(,)?) => {
        /// A trigger's validated configuration, by type.
        #[derive(Debug, Clone, PartialEq)]
        pub enum TriggerConfig {
            $(
                #[doc = concat!("A `", stringify!($variant), "` trigger's configuration.")]
                $variant(<$ty as TriggerType>::Config),
            )+
        }

        $(
            impl TypedConfig for <$ty as TriggerType>::Config {
                fn of(config: &TriggerConfig) -> Option<&Self> {
                    #[allow(unreachable_patterns)] // With a single type registered.
                    match config {
                        TriggerConfig::$variant(config) => Some(config),
                        _ => None,
                    }
                }
            }
        )+

        /// The names of the trigger types this host runs, in registration order.
        pub const TRIGGER_TYPES: &[&str] = &[$(<$ty as TriggerType>::NAME),+];

        impl TriggerConfig {
            /// The trigger type's name (`timer`, `redis`, ...).
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(TriggerConfig::$variant(_) => <$ty as TriggerType>::NAME,)+
                }
            }

            /// How many instances the trigger may have live at once.
            pub fn live_instances(&self) -> usize {
                match self {
                    $(TriggerConfig::$variant(config) => <$ty as TriggerType>::live_instances(config),)+
                }
            }
        }

        /// Validates every table of one trigger type; an unknown type is `None`.
        pub(crate) fn validate_type(
            type_name: &str,
            tables: RawTables,
            validation: &mut Validation,
        ) -> Option<Result<Vec<Trigger>, ManifestError>> {
            $(
                if type_name == <$ty as TriggerType>::NAME {
                    return Some(validate_tables::<$ty>(tables, validation, TriggerConfig::$variant));
                }
            )+
            None
        }

        /// The running trigger of every type `triggers` use.
        pub(crate) fn build_all(
            triggers: &[Trigger],
            context: &BuildContext<'_>,
        ) -> anyhow::Result<Vec<Box<dyn RunTrigger>>> {
            let mut running: Vec<Box<dyn RunTrigger>> = Vec::new();
            $(
                let of_type: Vec<TriggerSpec<'_, <$ty as TriggerType>::Config>> =
                    specs_of::<$ty>(triggers).collect();
                if !of_type.is_empty() {
                    running.push(Box::new(<$ty as TriggerType>::build(&of_type, context)?));
                }
            )+
            Ok(running)
        }
    };
}

registered_trigger_types! {
    Timer(crate::timer::TimerTrigger),
    Redis(crate::redis_trigger::RedisTrigger),
    RedisStream(crate::stream_trigger::StreamTrigger),
}

/// The triggers of type `T`, as its [`TriggerType::build`] takes them.
fn specs_of<T>(triggers: &[Trigger]) -> impl Iterator<Item = TriggerSpec<'_, T::Config>>
where
    T: TriggerType,
    T::Config: TypedConfig,
{
    triggers.iter().filter_map(|trigger| {
        Some(TriggerSpec {
            id: &trigger.id,
            component: &trigger.component,
            limits: &trigger.limits,
            config: T::Config::of(&trigger.config)?,
        })
    })
}

/// The id Spin gives a trigger without one: `<component>-<type>-trigger` when it names a
/// component, else (an inline component, or that id taken) `<type>-trigger<N>`, the first free
/// `N` from 1; so logs and locked apps name triggers alike.
fn generated_trigger_id(
    type_name: &str,
    component: &RawComponentRef,
    taken: &mut BTreeSet<String>,
) -> String {
    if let RawComponentRef::Id(component) = component {
        let natural = format!("{component}-{type_name}-trigger");
        if taken.insert(natural.clone()) {
            return natural;
        }
    }
    (1..)
        .map(|counter| format!("{type_name}-trigger{counter}"))
        .find(|id| taken.insert(id.clone()))
        .unwrap_or_default()
}

/// Validates one type's settings, then each of its triggers in order.
fn validate_tables<T: TriggerType>(
    tables: RawTables,
    validation: &mut Validation,
    wrap: fn(T::Config) -> TriggerConfig,
) -> Result<Vec<Trigger>, ManifestError> {
    let raw_settings = match tables.settings {
        Some(table) => {
            let location = table
                .location
                .clone()
                .unwrap_or_else(|| format!("application.trigger.{}", T::NAME));
            validation.deserialize(table, &location)?
        }
        None => T::RawSettings::default(),
    };
    let settings = T::validate_settings(raw_settings, validation)?;
    let mut taken_ids: BTreeSet<String> = tables
        .triggers
        .iter()
        .filter_map(|table| table.value.get("id")?.as_str().map(str::to_owned))
        .collect();
    let mut triggers = Vec::new();
    for (index, table) in tables.triggers.into_iter().enumerate() {
        let location = table
            .location
            .clone()
            .unwrap_or_else(|| trigger_location(T::NAME, index));
        let (id, component, limits, rest) = validation.split_trigger_table(table, &location)?;
        let raw: T::RawConfig = validation.deserialize(rest, &location)?;
        let id = match id {
            Some(id) => id,
            None => generated_trigger_id(T::NAME, &component, &mut taken_ids),
        };
        let component = validation.resolve_component(component, &id, &location)?;
        let config = T::validate(raw, &settings, &location, validation)?;
        triggers.push(Trigger {
            id,
            component,
            limits,
            config: wrap(config),
        });
    }
    Ok(triggers)
}
