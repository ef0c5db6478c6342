//! The shape every trigger type has, and the one list that registers each.
//!
//! A trigger type is one module: its manifest tables (`[application.trigger.<type>]` and
//! `[[trigger.<type>]]`) as serde structs with their validation, the validated configuration
//! the [`App`] keeps, and the running trigger. It implements [`TriggerType`]; the list in
//! `registered_trigger_types!` below makes the manifest and locked-app loaders, the app model
//! and the runtime know it. Adding a type touches its own module and that list (and, for
//! `spin up` to run it through our plugin, the plugin names `cargo xtask plugin` packages).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::App;
use crate::engine::{Engine, PreparedComponent};
use crate::manifest::{ManifestError, RawComponentRef, Validation};
use crate::variables::ResolvedVariables;

/// What a trigger type provides. Implemented by the type's running trigger.
pub trait TriggerType: RunTrigger + Sized + 'static {
    /// The type's name: `[[trigger.<NAME>]]` in `spin.toml`, `trigger_type` in Spin's locked
    /// app, and the plugin `trigger-<NAME>` that `spin up` runs for it.
    const NAME: &'static str;
    /// `[application.trigger.<NAME>]`, as written; `Default` when the table is absent.
    type RawSettings: DeserializeOwned + Default;
    /// `[application.trigger.<NAME>]`, validated.
    type Settings;
    /// One `[[trigger.<NAME>]]` as written, without `id` and `component` (read for every type
    /// alike).
    type RawConfig: DeserializeOwned;
    /// One `[[trigger.<NAME>]]`, validated: what the app model keeps.
    type Config: std::fmt::Debug + Clone + PartialEq;

    /// Checks the application-level settings; errors name the field through `validation`.
    fn validate_settings(
        raw: Self::RawSettings,
        validation: &Validation,
    ) -> Result<Self::Settings, ManifestError>;

    /// Checks one trigger; `location` is its table (`trigger.<NAME>[<index>]`).
    fn validate(
        raw: Self::RawConfig,
        settings: &Self::Settings,
        location: &str,
        validation: &Validation,
    ) -> Result<Self::Config, ManifestError>;

    /// How many instances the trigger may have live at once, which sizes the instance pool.
    fn live_instances(config: &Self::Config) -> usize;

    /// Resolves the app's triggers of this type against their prepared components, each held
    /// to its limits (`engine`'s defaults where it sets none).
    fn build(
        app: &App,
        variables: &ResolvedVariables,
        prepared: &BTreeMap<String, Arc<PreparedComponent>>,
        engine: &Engine,
    ) -> anyhow::Result<Self>;
}

/// A trigger type in the registration list below.
pub trait Registered: TriggerType {
    /// The trigger's configuration, if `config` is one of this type.
    fn config_of(config: &TriggerConfig) -> Option<&Self::Config>;
}

/// A future a running trigger returns; boxed, so that triggers of every type sit in one list.
pub type TriggerFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A trigger type's running side, as the runtime drives it.
pub trait RunTrigger: Send + Sync {
    /// Takes events until `shutdown` is cancelled, running handlers on `tracker` so that the
    /// runtime can wait for those in flight.
    fn run(
        &self,
        engine: Arc<Engine>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> TriggerFuture<'_, ()>;

    /// `up --once`: runs each component once where that means something (timers); the
    /// default does nothing.
    fn run_once<'a>(&'a self, _engine: &'a Engine) -> TriggerFuture<'a, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// One trigger of the app, of any type.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// The trigger's id: Spin's (locked app), or `id` / `<type>-<n>` (manifest).
    pub id: String,
    /// The id of the component it runs.
    pub component: String,
    /// Limits on each of its handler calls, where the trigger sets its own.
    pub limits: HandlerLimits,
    pub config: TriggerConfig,
}

/// What a `[[trigger.<type>]]` of any type may set, ours: limits on each handler call. Unset,
/// the host's defaults apply (`--handler-timeout`, `--max-memory`, `--max-table-elements`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandlerLimits {
    /// `handler_timeout = "30s"`: how long one call may run before its instance is stopped.
    pub timeout: Option<std::time::Duration>,
    /// `max_memory = "64MiB"`: how large the instance's linear memory may grow.
    pub max_memory: Option<usize>,
    /// `max_table_elements = 5000`: how many elements the instance's tables may hold.
    pub max_table_elements: Option<usize>,
}

/// Registers the trigger types: `Variant(RunningType)`, one per type. Generates
/// [`TriggerConfig`] (one variant per type) and the functions the loaders and the runtime call.
macro_rules! registered_trigger_types {
    ($($variant:ident($ty:ty)),+ $(,)?) => {
        /// A trigger's validated configuration, by type.
        #[derive(Debug, Clone, PartialEq)]
        pub enum TriggerConfig {
            $($variant(<$ty as TriggerType>::Config),)+
        }

        $(
            impl Registered for $ty {
                fn config_of(config: &TriggerConfig) -> Option<&Self::Config> {
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

        /// The running trigger of every type the app uses.
        pub(crate) fn build_all(
            app: &App,
            variables: &ResolvedVariables,
            prepared: &BTreeMap<String, Arc<PreparedComponent>>,
            engine: &Engine,
        ) -> anyhow::Result<Vec<Box<dyn RunTrigger>>> {
            let mut running: Vec<Box<dyn RunTrigger>> = Vec::new();
            $(
                if app.triggers.iter().any(|trigger| matches!(trigger.config, TriggerConfig::$variant(_))) {
                    running.push(Box::new(<$ty as TriggerType>::build(app, variables, prepared, engine)?));
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

/// The components one trigger type's triggers use, each wrapped for the type once (in the order
/// first used), however many triggers share it.
pub(crate) struct TypeComponents<C> {
    wrapped: Vec<(String, Arc<C>)>,
}

impl<C> TypeComponents<C> {
    pub(crate) fn new() -> Self {
        TypeComponents {
            wrapped: Vec::new(),
        }
    }

    /// Component `id`, wrapped by `wrap` (which picks the world it exports) the first time.
    pub(crate) fn get(
        &mut self,
        id: &str,
        prepared: &BTreeMap<String, Arc<PreparedComponent>>,
        wrap: impl FnOnce(Arc<PreparedComponent>) -> anyhow::Result<C>,
    ) -> anyhow::Result<Arc<C>> {
        if let Some((_, component)) = self.wrapped.iter().find(|(wrapped, _)| wrapped == id) {
            return Ok(component.clone());
        }
        let prepared = prepared
            .get(id)
            .ok_or_else(|| anyhow::anyhow!("component `{id}` was not prepared"))?;
        let component = Arc::new(wrap(prepared.clone())?);
        self.wrapped.push((id.to_owned(), component.clone()));
        Ok(component)
    }

    /// Each component once, in the order first used.
    pub(crate) fn into_ordered(self) -> Vec<Arc<C>> {
        self.wrapped
            .into_iter()
            .map(|(_, component)| component)
            .collect()
    }
}

/// One trigger type's tables, as read from `spin.toml` or the locked app, before validation.
#[derive(Default)]
pub(crate) struct RawTables {
    /// `[application.trigger.<type>]`, if present.
    pub settings: Option<crate::manifest::RawTable>,
    /// Each `[[trigger.<type>]]` (or locked trigger, its id under `id`).
    pub triggers: Vec<crate::manifest::RawTable>,
}

/// The id Spin gives a trigger without one: `<component>-<type>-trigger` when it names a
/// component, else (an inline component, or that id taken) `<type>-trigger<N>`, the first free
/// `N` from 1; so logs and locked apps name triggers alike.
fn generated_trigger_id(
    type_name: &str,
    component: &RawComponentRef,
    taken: &mut std::collections::BTreeSet<String>,
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
    let mut taken_ids: std::collections::BTreeSet<String> = tables
        .triggers
        .iter()
        .filter_map(|table| table.value.get("id")?.as_str().map(str::to_owned))
        .collect();
    let mut triggers = Vec::new();
    for (index, table) in tables.triggers.into_iter().enumerate() {
        let location = table
            .location
            .clone()
            .unwrap_or_else(|| format!("trigger.{}[{index}]", T::NAME));
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
