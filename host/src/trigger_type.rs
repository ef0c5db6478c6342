//! The contract every trigger type fulfils: how it validates its tables, sizes its instance
//! pool, is built from the app's triggers of its type, and runs.
//!
//! A trigger type is one module: its manifest tables (`[application.trigger.<type>]` and
//! `[[trigger.<type>]]`) as serde structs with their validation, the validated configuration
//! the app keeps, and the running trigger. It implements [`TriggerType`]; the registration list
//! in [`crate::trigger_registry`], which sits above every trigger module, makes the loaders, the app
//! model and the runtime know it.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::control::TriggerControl;
use crate::engine::{Engine, PreparedComponent};
use crate::limits::{HandlerLimits, Limits};
use crate::telemetry::EventReporter;
use crate::validation::{ManifestError, Validation};
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
        triggers: &[TriggerSpec<'_, Self::Config>],
        context: &BuildContext<'_>,
    ) -> anyhow::Result<Self>;
}

/// What building any trigger type needs of the app and the runtime.
pub struct BuildContext<'a> {
    /// The name this deployment's hosts share in Redis: the app's name, with `@<namespace>`
    /// when `--namespace` is given. A stream trigger's default consumer group, and part of a
    /// coordinated timer's keys.
    pub deployment: &'a str,
    /// The app's resolved variables, for rendering trigger settings.
    pub variables: &'a ResolvedVariables,
    /// Every component a trigger uses, compiled and linked.
    pub prepared: &'a BTreeMap<String, Arc<PreparedComponent>>,
    /// The engine, for its default limits and TLS settings.
    pub engine: &'a Engine,
}

impl<'a> BuildContext<'a> {
    /// What every trigger type's build starts with: each trigger with its component (wrapped
    /// by `wrap`, which picks the world it exports, once however many triggers share it), its
    /// limits (the engine's defaults where it sets none) and its event reporter; and the
    /// components, each once, in the order first used.
    pub(crate) fn resolve<'t, T: TriggerType, C>(
        &self,
        triggers: &[TriggerSpec<'t, T::Config>],
        wrap: impl Fn(Arc<PreparedComponent>) -> anyhow::Result<C>,
    ) -> anyhow::Result<Resolved<'t, T::Config, C>> {
        let mut components = TypeComponents::new();
        let built = triggers
            .iter()
            .map(|&spec| {
                Ok(BuiltTrigger {
                    component: components.get(spec.component, self.prepared, &wrap)?,
                    limits: self.engine.limits(spec.limits),
                    reporter: self.engine.reporter(T::NAME, spec.id, spec.component),
                    spec,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok((built, components.into_ordered()))
    }
}

/// The triggers of one type, resolved, and their components (see [`BuildContext::resolve`]).
pub(crate) type Resolved<'a, Config, C> = (Vec<BuiltTrigger<'a, Config, C>>, Vec<Arc<C>>);

/// One trigger with what every type's build resolves for it (see [`BuildContext::resolve`]).
pub(crate) struct BuiltTrigger<'a, Config, C> {
    /// The trigger as the app has it.
    pub(crate) spec: TriggerSpec<'a, Config>,
    /// Its component, wrapped for the trigger type.
    pub(crate) component: Arc<C>,
    /// Its limits, the engine's defaults filled in.
    pub(crate) limits: Limits,
    /// Where its events are reported.
    pub(crate) reporter: EventReporter,
}

/// One trigger of a type, as the type's [`TriggerType::build`] sees it.
#[derive(Debug)]
pub struct TriggerSpec<'a, C> {
    /// The trigger's id.
    pub id: &'a str,
    /// The id of the component it runs.
    pub component: &'a str,
    /// Limits on each of its handler calls, where the trigger sets its own.
    pub limits: &'a HandlerLimits,
    /// Its validated configuration.
    pub config: &'a C,
}

// By hand: derived, they would ask `C: Clone`, yet only references are copied.
impl<C> Clone for TriggerSpec<'_, C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for TriggerSpec<'_, C> {}

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

    /// Its triggers as an operator controls them through the admin endpoint; none by default.
    fn controls(&self) -> Vec<Arc<dyn TriggerControl>> {
        Vec::new()
    }
}

/// The components one trigger type's triggers use, each wrapped for the type once (in the order
/// first used), however many triggers share it.
struct TypeComponents<C> {
    wrapped: Vec<(String, Arc<C>)>,
}

impl<C> TypeComponents<C> {
    fn new() -> Self {
        TypeComponents {
            wrapped: Vec::new(),
        }
    }

    /// Component `id`, wrapped by `wrap` (which picks the world it exports) the first time.
    fn get(
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
    fn into_ordered(self) -> Vec<Arc<C>> {
        self.wrapped
            .into_iter()
            .map(|(_, component)| component)
            .collect()
    }
}
