//! An app built in code, for a host that embeds this crate rather than reading a `spin.toml`.
//!
//! The builder writes what a manifest would hold — `[variables]`, `[component.<id>]`,
//! `[application.trigger.<type>]`, `[[trigger.<type>]]` — and [`AppBuilder::build`] validates
//! it by the same rules, with the same messages, as the manifest loader: a builder app and a
//! `spin.toml` app are the same [`App`]. Components come from a file or from bytes already in
//! memory.
//!
//! ```
//! use std::time::Duration;
//! use spin_trigger_host::App;
//! use spin_trigger_host::app_builder::{ComponentBuilder, TriggerBuilder, Variable};
//!
//! # let wasm_bytes: Vec<u8> = Vec::new();
//! let app = App::builder("orders")
//!     .variable("greeting", Variable::with_default("hello"))
//!     .component(
//!         ComponentBuilder::from_bytes("ticker", wasm_bytes)
//!             .variable("message", "{{ greeting }}, world"),
//!     )
//!     .component(ComponentBuilder::from_file("consumer", "target/consumer.wasm"))
//!     .trigger(TriggerBuilder::timer("ticker").interval(Duration::from_millis(250)))
//!     .trigger(
//!         TriggerBuilder::redis_stream("consumer", "orders")
//!             .address("redis://127.0.0.1:6379")
//!             .max_in_flight(4)
//!             .set("max_attempts", 3),
//!     )
//!     .build()?;
//! assert_eq!(app.triggers().len(), 2);
//!
//! // Validated as a manifest is: the same field, the same message.
//! let error = App::builder("orders")
//!     .component(ComponentBuilder::from_file("ticker", "ticker.wasm"))
//!     .trigger(TriggerBuilder::timer("ticker").interval(Duration::ZERO))
//!     .build()
//!     .unwrap_err();
//! assert!(error.to_string().ends_with(
//!     "trigger.timer[0].interval: \"0s\" is shorter than the 1ms minimum"
//! ));
//! # Ok::<(), spin_trigger_host::manifest::ManifestError>(())
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::app::App;
use crate::app_spec::{RawApplication, RawManifest, RawVariable, validate};
use crate::validation::{
    ManifestError, RawComponent, RawFileEntry, RawFileMount, RawTable, trigger_location,
};

/// An app under construction: see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct AppBuilder {
    name: String,
    base_dir: Option<PathBuf>,
    variables: BTreeMap<String, Variable>,
    components: Vec<ComponentBuilder>,
    settings: BTreeMap<String, Map<String, Value>>,
    triggers: Vec<TriggerBuilder>,
}

impl App {
    /// Starts building an app named `name` in code (see [`crate::app_builder`]).
    pub fn builder(name: impl Into<String>) -> AppBuilder {
        AppBuilder {
            name: name.into(),
            base_dir: None,
            variables: BTreeMap::new(),
            components: Vec::new(),
            settings: BTreeMap::new(),
            triggers: Vec::new(),
        }
    }
}

impl AppBuilder {
    /// The directory relative paths (component files, `files`, build steps) are resolved
    /// against; the current directory by default.
    pub fn base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }

    /// Declares an application variable (`[variables]`).
    pub fn variable(mut self, name: impl Into<String>, variable: Variable) -> Self {
        self.variables.insert(name.into(), variable);
        self
    }

    /// Adds a component (`[component.<id>]`).
    pub fn component(mut self, component: ComponentBuilder) -> Self {
        self.components.push(component);
        self
    }

    /// Adds a trigger (`[[trigger.<type>]]`), after the others of its type.
    pub fn trigger(mut self, trigger: TriggerBuilder) -> Self {
        self.triggers.push(trigger);
        self
    }

    /// Sets a field of `[application.trigger.<trigger_type>]`: `speedup` for timers, the
    /// default `address` for Redis and Redis Streams triggers.
    ///
    /// ```
    /// # use spin_trigger_host::App;
    /// let builder = App::builder("clock").trigger_setting("timer", "speedup", 2.0);
    /// ```
    pub fn trigger_setting(
        mut self,
        trigger_type: impl Into<String>,
        field: impl Into<String>,
        value: impl Into<Value>,
    ) -> Self {
        self.settings
            .entry(trigger_type.into())
            .or_default()
            .insert(field.into(), value.into());
        self
    }

    /// Validates the app as the manifest loader validates a `spin.toml`. Errors start with
    /// `<name> (built in code)` where a manifest's start with its file.
    pub fn build(self) -> Result<App, ManifestError> {
        let origin = PathBuf::from(format!("{} (built in code)", self.name));
        let base_dir = match self.base_dir {
            Some(dir) => dir,
            None => std::env::current_dir().map_err(|error| {
                ManifestError::at(
                    &origin,
                    "base_dir",
                    format!("no current directory: {error}"),
                )
            })?,
        };
        refuse_nulls(&self.settings, &self.triggers, &origin)?;
        let table = |value: Map<String, Value>| RawTable {
            value: Value::Object(value),
            offset: None,
            location: None,
        };
        let mut triggers: BTreeMap<String, Vec<RawTable>> = BTreeMap::new();
        for trigger in self.triggers {
            triggers
                .entry(trigger.trigger_type)
                .or_default()
                .push(table(trigger.table));
        }
        let raw = RawManifest {
            spin_manifest_version: 2,
            application: RawApplication {
                name: self.name,
                version: None,
                authors: Vec::new(),
                description: None,
                trigger: self
                    .settings
                    .into_iter()
                    .map(|(trigger_type, settings)| (trigger_type, table(settings)))
                    .collect(),
                targets: Vec::new(),
                tool: BTreeMap::new(),
            },
            variables: self
                .variables
                .into_iter()
                .map(|(name, variable)| (name, variable.into_raw()))
                .collect(),
            trigger: triggers,
            component: self
                .components
                .into_iter()
                .map(|component| (component.id, component.raw))
                .collect(),
        };
        validate(raw, &origin, &base_dir, None)
    }
}

/// A field set to JSON `null` — which is what `serde_json` makes of an infinite or NaN float —
/// would read as absent and take its default; the builder refuses it instead, as the manifest
/// loader refuses `speedup = nan`.
fn refuse_nulls(
    settings: &BTreeMap<String, Map<String, Value>>,
    triggers: &[TriggerBuilder],
    origin: &std::path::Path,
) -> Result<(), ManifestError> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let trigger_tables = triggers.iter().map(|trigger| {
        let index = counts.entry(&trigger.trigger_type).or_default();
        let location = trigger_location(&trigger.trigger_type, *index);
        *index += 1;
        (location, &trigger.table)
    });
    let settings_tables = settings
        .iter()
        .map(|(trigger_type, table)| (format!("application.trigger.{trigger_type}"), table));
    for (location, table) in settings_tables.chain(trigger_tables) {
        if let Some((field, _)) = table.iter().find(|(_, value)| value.is_null()) {
            return Err(ManifestError::at(
                origin,
                format!("{location}.{field}"),
                "has no value (null, or a number that is not finite): set a finite number or leave it out",
            ));
        }
    }
    Ok(())
}

/// An application variable: a default, or required; either may be secret.
#[derive(Debug, Clone, Default)]
pub struct Variable {
    default: Option<String>,
    required: bool,
    secret: bool,
}

impl Variable {
    /// A variable with a default value.
    pub fn with_default(value: impl Into<String>) -> Self {
        Variable {
            default: Some(value.into()),
            ..Variable::default()
        }
    }

    /// A variable that must be given a value (`--variable`, a provider, the environment).
    pub fn required() -> Self {
        Variable {
            required: true,
            ..Variable::default()
        }
    }

    /// Marks the variable secret: its value is never logged.
    pub fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    fn into_raw(self) -> RawVariable {
        RawVariable {
            description: None,
            default: self.default,
            required: self.required,
            secret: self.secret,
        }
    }
}

/// A component: its WebAssembly, and what the guest sees (variables, environment, files, hosts
/// it may reach).
#[derive(Clone)]
pub struct ComponentBuilder {
    id: String,
    raw: RawComponent,
}

/// The id and source, not a component's bytes.
impl std::fmt::Debug for ComponentBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentBuilder")
            .field("id", &self.id)
            .field("source", &self.raw.source)
            .finish_non_exhaustive()
    }
}

impl ComponentBuilder {
    /// A component read from a `.wasm` file; a relative path is resolved against the app's
    /// [`base_dir`](AppBuilder::base_dir).
    pub fn from_file(id: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        let raw = RawComponent {
            source: path.into().display().to_string(),
            ..RawComponent::default()
        };
        ComponentBuilder { id: id.into(), raw }
    }

    /// A component from bytes the embedder holds (read from anywhere, or built in).
    pub fn from_bytes(id: impl Into<String>, bytes: impl Into<Arc<[u8]>>) -> Self {
        let id = id.into();
        let raw = RawComponent {
            source: format!("component `{id}`'s bytes"),
            source_bytes: Some(bytes.into()),
            ..RawComponent::default()
        };
        ComponentBuilder { id, raw }
    }

    /// A component variable: a `{{ var }}` template over the application variables.
    pub fn variable(mut self, name: impl Into<String>, template: impl Into<String>) -> Self {
        self.raw.variables.insert(name.into(), template.into());
        self
    }

    /// An environment variable the guest sees (it sees none of the host's).
    pub fn environment(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.raw.environment.insert(name.into(), value.into());
        self
    }

    /// A host the guest may connect to (`allowed_outbound_hosts`), e.g.
    /// `"redis://127.0.0.1:6379"`; may hold `{{ var }}` templates.
    pub fn allowed_outbound_host(mut self, host: impl Into<String>) -> Self {
        self.raw.allowed_outbound_hosts.push(host.into());
        self
    }

    /// A key-value store the guest may open (`key_value_stores`): `default`, or a label
    /// [`EngineOptions::state`](crate::EngineOptions::state) configures.
    pub fn key_value_store(mut self, label: impl Into<String>) -> Self {
        self.raw.key_value_stores.push(label.into());
        self
    }

    /// A SQLite database the guest may open (`sqlite_databases`): `default`, or a label
    /// [`EngineOptions::state`](crate::EngineOptions::state) configures.
    pub fn sqlite_database(mut self, label: impl Into<String>) -> Self {
        self.raw.sqlite_databases.push(label.into());
        self
    }

    /// Files the guest sees, read-only: every file matching `pattern` (relative to the app's
    /// base directory), at its relative path under `/`.
    pub fn files(mut self, pattern: impl Into<String>) -> Self {
        self.raw.files.push(RawFileEntry::Pattern(pattern.into()));
        self
    }

    /// A directory or file of the host (`source`) that the guest sees at `destination`.
    pub fn mount(mut self, source: impl Into<String>, destination: impl Into<String>) -> Self {
        self.raw.files.push(RawFileEntry::Mount(RawFileMount {
            source: source.into(),
            destination: destination.into(),
        }));
        self
    }

    /// A glob of files `files` patterns leave out.
    pub fn exclude_files(mut self, pattern: impl Into<String>) -> Self {
        self.raw.exclude_files.push(pattern.into());
        self
    }
}

/// One trigger: its type, the component it runs, and its settings, each as the manifest's
/// `[[trigger.<type>]]` names it.
#[derive(Debug, Clone)]
pub struct TriggerBuilder {
    trigger_type: String,
    table: Map<String, Value>,
}

impl TriggerBuilder {
    /// A trigger of `trigger_type` running `component`; its other fields are set with
    /// [`set`](Self::set) or the typed setters.
    pub fn new(trigger_type: impl Into<String>, component: impl Into<String>) -> Self {
        let mut table = Map::new();
        table.insert("component".into(), Value::String(component.into()));
        TriggerBuilder {
            trigger_type: trigger_type.into(),
            table,
        }
    }

    /// A timer running `component`; set its [`interval`](Self::interval), and its policies
    /// (`overlap`, `catch_up`, `jitter`, `max_attempts`, `retry_backoff`, `start_at`, `end_at`)
    /// through [`set`](Self::set).
    pub fn timer(component: impl Into<String>) -> Self {
        Self::new("timer", component)
    }

    /// A Redis pub/sub trigger running `component` for each message on `channel` (a glob
    /// pattern subscribes by pattern).
    pub fn redis(component: impl Into<String>, channel: impl Into<String>) -> Self {
        Self::new("redis", component).set("channel", channel.into())
    }

    /// A Redis Streams trigger running `component` for each entry of `stream`, in a consumer
    /// group (`group`, `consumer`, `max_attempts`, `dead_letter`, `claim_idle`, `batch_size`, `batch_wait` through
    /// [`set`](Self::set)).
    pub fn redis_stream(component: impl Into<String>, stream: impl Into<String>) -> Self {
        Self::new("redis-stream", component).set("stream", stream.into())
    }

    /// Sets any field of the trigger's table, as `spin.toml` spells it.
    pub fn set(mut self, field: impl Into<String>, value: impl Into<Value>) -> Self {
        self.table.insert(field.into(), value.into());
        self
    }

    /// The trigger's id; generated as Spin generates it when unset.
    pub fn id(self, id: impl Into<String>) -> Self {
        self.set("id", id.into())
    }

    /// A timer's interval (`interval`), from 1 ms.
    pub fn interval(self, interval: Duration) -> Self {
        self.set("interval", duration_text(interval))
    }

    /// The Redis server (`address`), e.g. `"redis://127.0.0.1:6379"`.
    pub fn address(self, address: impl Into<String>) -> Self {
        self.set("address", address.into())
    }

    /// How many events the component handles at once (`max_in_flight`).
    pub fn max_in_flight(self, max_in_flight: usize) -> Self {
        self.set("max_in_flight", max_in_flight)
    }

    /// How long one handler call may run (`handler_timeout`).
    pub fn handler_timeout(self, timeout: Duration) -> Self {
        self.set("handler_timeout", duration_text(timeout))
    }

    /// How large one instance's memory may grow, in bytes (`max_memory`).
    pub fn max_memory(self, bytes: usize) -> Self {
        self.set("max_memory", bytes.to_string())
    }

    /// How many elements one instance's tables may hold (`max_table_elements`).
    pub fn max_table_elements(self, elements: usize) -> Self {
        self.set("max_table_elements", elements)
    }
}

/// A duration as a manifest writes it (`"1s 500ms"`), which reads back exactly.
fn duration_text(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}
