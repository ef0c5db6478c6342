//! The resolved app model: what the runtime needs, whichever file it came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use crate::component::{BuildStep, Component, ComponentSource, FileMount};
pub use crate::limits::HandlerLimits;
pub use crate::redis_trigger::RedisConfig;
pub use crate::stream_trigger::StreamConfig;
pub use crate::timer::{Overlap, TimerConfig, TimerPolicy, TimerSchedule};
pub use crate::trigger_registry::{Trigger, TriggerConfig, TypedConfig};
pub use crate::variable_templates::{Template, VariableDecl};
use crate::variables::{Providers, ResolvedVariables};

/// A loaded, validated application. Component sources are absolute paths; variable values are
/// still templates, resolved at start-up by [`crate::variables::ResolvedVariables`].
///
/// An `App` exists only validated: it comes from a manifest ([`crate::manifest::load`]), a
/// locked app ([`crate::locked_app::load`]) or the builder ([`App::builder`]), and is read
/// through its accessors.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    /// `[application] name`.
    pub(crate) name: String,
    /// The file the app was loaded from, for messages.
    pub(crate) origin: PathBuf,
    /// The directory relative paths are resolved against.
    pub(crate) base_dir: PathBuf,
    /// `[variables]`, by name.
    pub(crate) variables: BTreeMap<String, VariableDecl>,
    /// Every component, by id (inline ones as `<trigger id>-component`).
    pub(crate) components: BTreeMap<String, Component>,
    /// Every trigger, of every type.
    pub(crate) triggers: Vec<Trigger>,
}

impl App {
    /// `[application] name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file the app was loaded from, for messages.
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// The directory relative paths are resolved against.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// `[variables]`, by name.
    pub fn variables(&self) -> &BTreeMap<String, VariableDecl> {
        &self.variables
    }

    /// Every component, by id (inline ones as `<trigger id>-component`).
    pub fn components(&self) -> &BTreeMap<String, Component> {
        &self.components
    }

    /// Every trigger, of every type.
    pub fn triggers(&self) -> &[Trigger] {
        &self.triggers
    }

    /// The triggers whose configuration is a `C`, each with it.
    ///
    /// ```no_run
    /// use spin_trigger_host::app::TimerConfig;
    ///
    /// let app = spin_trigger_host::manifest::load("spin.toml")?;
    /// for (trigger, timer) in app.triggers_of::<TimerConfig>() {
    ///     println!("{} every {:?}", trigger.id, timer.effective_interval());
    /// }
    /// # Ok::<(), spin_trigger_host::manifest::ManifestError>(())
    /// ```
    pub fn triggers_of<C: TypedConfig>(&self) -> impl Iterator<Item = (&Trigger, &C)> {
        self.triggers
            .iter()
            .filter_map(|trigger| Some((trigger, C::of(&trigger.config)?)))
    }

    /// Keeps only the triggers of `trigger_type`: a plugin Spin launches as `trigger-timer` runs
    /// the timer triggers and leaves the rest to Spin.
    pub fn retain_trigger_type(&mut self, trigger_type: &str) {
        self.triggers
            .retain(|trigger| trigger.config.type_name() == trigger_type);
    }

    /// How many instances the app's triggers may have live at once: one per timer trigger (a
    /// tick that comes while the last one runs is skipped) plus each Redis or stream trigger's
    /// `max_in_flight`.
    pub fn max_live_instances(&self) -> usize {
        self.triggers
            .iter()
            .map(|trigger| trigger.config.live_instances())
            .fold(0, usize::saturating_add)
    }

    /// Resolves the app's variables from `providers` and renders every component's variables.
    pub fn resolve_variables(&self, providers: &Providers) -> anyhow::Result<ResolvedVariables> {
        let components = self
            .components
            .iter()
            .map(|(id, component)| (id, &component.variables));
        ResolvedVariables::resolve(&self.origin, &self.variables, components, providers)
    }

    /// The component a trigger names; validation guarantees it exists.
    pub fn component(&self, id: &str) -> Option<&Component> {
        self.components.get(id)
    }
}
