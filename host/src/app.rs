//! The resolved app model: what the runtime needs, whichever file it came from.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::trigger::Registered;
pub use crate::trigger::{Trigger, TriggerConfig};
use crate::variables::{Template, VariableDecl};

/// A loaded, validated application. Component sources are absolute paths; variable values are
/// still templates, resolved at start-up by [`crate::variables::ResolvedVariables`].
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub name: String,
    /// The file the app was loaded from, for messages.
    pub origin: PathBuf,
    /// The directory relative paths are resolved against.
    pub base_dir: PathBuf,
    pub variables: BTreeMap<String, VariableDecl>,
    pub components: BTreeMap<String, Component>,
    /// Every trigger, of every type.
    pub triggers: Vec<Trigger>,
}

/// One `[component.<id>]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Component {
    pub id: String,
    /// Absolute path of the `.wasm` component.
    pub source: PathBuf,
    /// The component's variables: name to a template over application variables.
    pub variables: BTreeMap<String, Template>,
    /// Environment variables the guest sees; it sees none of the host's.
    pub environment: BTreeMap<String, String>,
    /// Spin's `allowed_outbound_hosts` entries; rendered and parsed at start-up.
    pub allowed_outbound_hosts: Vec<Template>,
    /// What the guest sees of the host's files, read-only.
    pub files: Vec<FileMount>,
    /// Glob patterns, relative to the app directory, of files `files` globs must leave out.
    pub exclude_files: Vec<String>,
    pub build: Option<BuildStep>,
    /// Key-value store labels the component may open (`key_value_stores`).
    pub key_value_stores: Vec<String>,
    /// SQLite database labels the component may open (`sqlite_databases`).
    pub sqlite_databases: Vec<String>,
}

/// One `files` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileMount {
    /// `{ source = "assets", destination = "/assets" }`: a directory or a file at a guest path.
    Path {
        host_path: PathBuf,
        guest_path: String,
    },
    /// `"static/**/*"`: every matching file, at its path relative to `base_dir`, under `/`.
    Glob { base_dir: PathBuf, pattern: String },
}

/// How to build a component (`[component.<id>.build]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildStep {
    /// Shell commands, run in order.
    pub commands: Vec<String>,
    /// Absolute directory to run them in.
    pub workdir: PathBuf,
}

impl App {
    /// The triggers of type `T`, each with its configuration.
    ///
    /// ```no_run
    /// use spin_trigger_host::timer::TimerTrigger;
    ///
    /// let app = spin_trigger_host::manifest::load("spin.toml")?;
    /// for (trigger, timer) in app.triggers_of::<TimerTrigger>() {
    ///     println!("{} every {:?}", trigger.id, timer.effective_interval());
    /// }
    /// # Ok::<(), spin_trigger_host::manifest::ManifestError>(())
    /// ```
    pub fn triggers_of<T: Registered>(&self) -> impl Iterator<Item = (&Trigger, &T::Config)> {
        self.triggers
            .iter()
            .filter_map(|trigger| Some((trigger, T::config_of(&trigger.config)?)))
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
            .sum()
    }

    /// The component a trigger names; validation guarantees it exists.
    pub fn component(&self, id: &str) -> Option<&Component> {
        self.components.get(id)
    }
}
