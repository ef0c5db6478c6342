//! Loading a manifest-version-2 `spin.toml` into the [`App`] model.
//!
//! Parsing is serde with `deny_unknown_fields` throughout; validation then checks what types
//! cannot (references, intervals, variable names). Every error names the file, the table and the
//! field, and is reported before anything runs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

use crate::allowed_hosts::AllowedHosts;
use crate::app::{App, BuildStep, Component, FileMount};
use crate::trigger::{self, HandlerLimits, RawTables, TRIGGER_TYPES};
use crate::variables::{self, Template, VariableDecl};

/// Why a manifest could not be loaded. Its text is the whole diagnosis.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ManifestError(String);

impl ManifestError {
    pub(crate) fn at(file: &Path, location: impl fmt::Display, message: impl fmt::Display) -> Self {
        ManifestError(format!("{}: {location}: {message}", file.display()))
    }
}

/// Loads and validates the manifest at `path`.
///
/// ```no_run
/// let app = spin_trigger_host::manifest::load("examples/timer-hello/spin.toml")?;
/// println!("{} triggers", app.triggers.len());
/// # Ok::<(), spin_trigger_host::manifest::ManifestError>(())
/// ```
pub fn load(path: impl AsRef<Path>) -> Result<App, ManifestError> {
    load_with(path, &LoadOptions::default())
}

/// How [`load_with`] treats what this host cannot run.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Leave out (and log) the triggers of types this host does not run, such as `http`,
    /// instead of refusing the app.
    pub skip_unsupported_triggers: bool,
}

/// Loads and validates the manifest at `path` as `options` say.
///
/// ```no_run
/// use spin_trigger_host::manifest::{LoadOptions, load_with};
///
/// // An app with HTTP triggers too: run its timers and leave the HTTP routes out.
/// let options = LoadOptions { skip_unsupported_triggers: true };
/// let app = load_with("spin.toml", &options)?;
/// # Ok::<(), spin_trigger_host::manifest::ManifestError>(())
/// ```
pub fn load_with(path: impl AsRef<Path>, options: &LoadOptions) -> Result<App, ManifestError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .map_err(|error| ManifestError(format!("{}: cannot read: {error}", path.display())))?;
    let base_dir = path
        .canonicalize()
        .ok()
        .and_then(|absolute| absolute.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    parse_with(&text, path, &base_dir, options)
}

/// Parses manifest `text` as if read from `file`, resolving relative paths against `base_dir`.
pub fn parse(text: &str, file: &Path, base_dir: &Path) -> Result<App, ManifestError> {
    parse_with(text, file, base_dir, &LoadOptions::default())
}

fn parse_with(
    text: &str,
    file: &Path,
    base_dir: &Path,
    options: &LoadOptions,
) -> Result<App, ManifestError> {
    let mut raw = deserialize(text, file)?;
    if options.skip_unsupported_triggers {
        skip_unsupported_triggers(&mut raw, file);
    }
    validate(raw, file, base_dir, Some(text))
}

/// Removes the trigger types this host does not run, saying what was left out.
fn skip_unsupported_triggers(raw: &mut RawManifest, file: &Path) {
    let unsupported = |type_name: &String| !TRIGGER_TYPES.contains(&type_name.as_str());
    raw.application
        .trigger
        .retain(|type_name, _| !unsupported(type_name));
    raw.trigger.retain(|type_name, tables| {
        if unsupported(type_name) {
            tracing::warn!(
                "{}: leaving out {} `{type_name}` trigger(s): this host does not run them",
                file.display(),
                tables.len()
            );
        }
        !unsupported(type_name)
    });
}

fn deserialize(text: &str, file: &Path) -> Result<RawManifest, ManifestError> {
    let deserializer = toml::Deserializer::parse(text).map_err(|error| {
        ManifestError::at(file, "syntax", with_line(text, &error, error.message()))
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let location = if path == "." {
            "manifest".to_owned()
        } else {
            path
        };
        ManifestError::at(file, location, with_line(text, &inner, inner.message()))
    })
}

/// A memory size as `max_memory` takes it: `"64MiB"`, `"1GiB"`, `"512MB"`, or bytes.
pub fn parse_memory_size(text: &str) -> Result<usize, String> {
    let wrong =
        || format!("\"{text}\" is not a memory size: write e.g. \"64MiB\", \"1GiB\" or \"512MB\"");
    let text = text.trim();
    let split = text
        .find(|character: char| !character.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number.parse().map_err(|_| wrong())?;
    let unit_size: usize = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1_000,
        "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        _ => return Err(wrong()),
    };
    let size = number.checked_mul(unit_size).ok_or_else(wrong)?;
    if size < 64 << 10 {
        return Err(format!(
            "\"{text}\" is less than one WebAssembly page (64KiB): give a component room to start"
        ));
    }
    Ok(size)
}

/// The line of `field = ...` in the table starting at `offset` (the first line at or after it
/// that assigns `field`), else the table's own line.
fn line_of(text: &str, offset: usize, field: Option<&str>) -> usize {
    let offset = offset.min(text.len());
    let table_line = text[..offset].matches('\n').count() + 1;
    let Some(field) = field else {
        return table_line;
    };
    let line_start = text[..offset].rfind('\n').map_or(0, |newline| newline + 1);
    text[line_start..]
        .lines()
        .position(|line| {
            line.trim_start()
                .trim_start_matches('"')
                .strip_prefix(field)
                .is_some_and(|rest| rest.trim_start_matches('"').trim_start().starts_with('='))
        })
        .map_or(table_line, |index| table_line + index)
}

/// `message (line N)` when the error has a span, for finding it in a long file.
fn with_line(text: &str, error: &toml::de::Error, message: &str) -> String {
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("{message} (line {line})")
        }
        None => message.to_owned(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawManifest {
    pub(crate) spin_manifest_version: u32,
    pub(crate) application: RawApplication,
    #[serde(default)]
    pub(crate) variables: BTreeMap<String, RawVariable>,
    /// `[[trigger.<type>]]`, by type.
    #[serde(default)]
    pub(crate) trigger: BTreeMap<String, Vec<RawTable>>,
    #[serde(default)]
    pub(crate) component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApplication {
    pub(crate) name: String,
    #[allow(dead_code)] // Loaded so that Spin's manifests load unchanged; nothing reads it yet.
    pub(crate) version: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    pub(crate) authors: Vec<String>,
    #[allow(dead_code)]
    pub(crate) description: Option<String>,
    /// `[application.trigger.<type>]`, by type.
    #[serde(default)]
    pub(crate) trigger: BTreeMap<String, RawTable>,
    /// Spin environments the app must be compatible with (`spin deploy` checks them); no
    /// meaning when running here.
    #[serde(default)]
    pub(crate) targets: Vec<toml::Value>,
    /// `[application.tool.<name>]`: settings for other tools, which Spin keeps and ignores.
    #[serde(default)]
    pub(crate) tool: BTreeMap<String, toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVariable {
    #[allow(dead_code)] // Documentation for the app's readers.
    pub(crate) description: Option<String>,
    pub(crate) default: Option<String>,
    #[serde(default)]
    pub(crate) required: bool,
    #[serde(default)]
    pub(crate) secret: bool,
}

/// A trigger type's table as read, kept as JSON until the type's own serde structs read it
/// (see [`crate::trigger`]).
pub(crate) struct RawTable {
    pub(crate) value: serde_json::Value,
    /// Where it starts in `spin.toml`, for line numbers.
    pub(crate) offset: Option<usize>,
    /// Where it is in its file, when not where `spin.toml` has it (a locked app's
    /// `triggers[0].trigger_config`).
    pub(crate) location: Option<String>,
}

impl<'de> Deserialize<'de> for RawTable {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = toml::Spanned::<serde_json::Value>::deserialize(deserializer)?;
        Ok(RawTable {
            offset: Some(spanned.span().start),
            value: spanned.into_inner(),
            location: None,
        })
    }
}

/// `component = "id"` or an inline `component = { source = ... }`.
pub(crate) enum RawComponentRef {
    Id(String),
    Inline(Box<RawComponent>),
}

impl<'de> Deserialize<'de> for RawComponentRef {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        string_or_table(
            deserializer,
            "a component id or an inline component table",
            RawComponentRef::Id,
            |component| RawComponentRef::Inline(Box::new(component)),
        )
    }
}

/// Deserializes a value Spin allows as either a string or a table, keeping the table's own
/// field errors (and `serde_path_to_error`'s path into it).
fn string_or_table<'de, D, Table, Value>(
    deserializer: D,
    expecting: &'static str,
    from_string: fn(String) -> Value,
    from_table: fn(Table) -> Value,
) -> Result<Value, D::Error>
where
    D: de::Deserializer<'de>,
    Table: Deserialize<'de>,
{
    struct StringOrTable<Table, Value> {
        expecting: &'static str,
        from_string: fn(String) -> Value,
        from_table: fn(Table) -> Value,
    }
    impl<'de, Table: Deserialize<'de>, Value> Visitor<'de> for StringOrTable<Table, Value> {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<Value, E> {
            Ok((self.from_string)(text.to_owned()))
        }
        fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Value, M::Error> {
            Table::deserialize(de::value::MapAccessDeserializer::new(map)).map(self.from_table)
        }
    }
    deserializer.deserialize_any(StringOrTable {
        expecting,
        from_string,
        from_table,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawComponent {
    pub(crate) source: String,
    #[allow(dead_code)]
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) variables: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) environment: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub(crate) files: Vec<RawFileEntry>,
    #[serde(default)]
    pub(crate) exclude_files: Vec<String>,
    pub(crate) build: Option<RawBuild>,
    /// Spin's older HTTP allow-list: each entry becomes `http://` and `https://` outbound hosts,
    /// as Spin converts it.
    #[serde(default)]
    pub(crate) allowed_http_hosts: Vec<String>,
    #[serde(default)]
    pub(crate) key_value_stores: Vec<String>,
    #[serde(default)]
    pub(crate) sqlite_databases: Vec<String>,
    #[serde(default)]
    pub(crate) ai_models: Vec<String>,
    /// Spin environments the component must be compatible with; no meaning when running here.
    #[serde(default)]
    pub(crate) targets: Option<Vec<toml::Value>>,
    /// `[component.<id>.tool.<name>]`: settings for other tools, which Spin keeps and ignores.
    #[serde(default)]
    pub(crate) tool: BTreeMap<String, toml::Table>,
    pub(crate) dependencies_inherit_configuration: Option<bool>,
    /// Imports satisfied by other components (`"my:dep/import" = { path = "dep.wasm" }`).
    #[serde(default)]
    pub(crate) dependencies: BTreeMap<String, toml::Value>,
    /// `[component.<id>.profile.<name>]`: overrides for `spin up --profile`.
    #[serde(default)]
    pub(crate) profile: BTreeMap<String, toml::Table>,
}

/// `files = ["static/**/*", { source = "assets", destination = "/assets" }]`.
pub(crate) enum RawFileEntry {
    Pattern(String),
    Mount(RawFileMount),
}

impl<'de> Deserialize<'de> for RawFileEntry {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        string_or_table(
            deserializer,
            "a glob pattern or a `{ source, destination }` table",
            RawFileEntry::Pattern,
            RawFileEntry::Mount,
        )
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFileMount {
    pub(crate) source: String,
    pub(crate) destination: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBuild {
    pub(crate) command: RawCommands,
    pub(crate) workdir: Option<String>,
    #[serde(default)]
    #[allow(dead_code)] // For `spin watch`; this host does not watch.
    pub(crate) watch: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum RawCommands {
    One(String),
    Many(Vec<String>),
}

/// Checks what serde cannot and builds the [`App`]. Collects the first error per rule, in the
/// file's order.
pub(crate) fn validate(
    raw: RawManifest,
    file: &Path,
    base_dir: &Path,
    text: Option<&str>,
) -> Result<App, ManifestError> {
    let err = |location: String, message: String| ManifestError::at(file, location, message);

    if raw.spin_manifest_version != 2 {
        return Err(err(
            "spin_manifest_version".into(),
            format!(
                "version {} is not supported: this host reads manifest version 2 (`spin_manifest_version = 2`)",
                raw.spin_manifest_version
            ),
        ));
    }

    let mut variables = BTreeMap::new();
    for (name, decl) in raw.variables {
        let location = format!("variables.{name}");
        variables::check_name(&name).map_err(|message| err(location.clone(), message))?;
        if decl.required && decl.default.is_some() {
            return Err(err(
                location,
                "a variable cannot be both `required = true` and have a `default`; keep one".into(),
            ));
        }
        if !decl.required && decl.default.is_none() {
            return Err(err(
                location,
                "a variable needs either `default = \"...\"` or `required = true`".into(),
            ));
        }
        variables.insert(
            name,
            VariableDecl {
                default: decl.default,
                required: decl.required,
                secret: decl.secret,
            },
        );
    }

    let mut validation = Validation {
        file,
        base_dir,
        text,
        variables: &variables,
        components: BTreeMap::new(),
    };
    for (id, component) in raw.component {
        let component =
            validate_component(&id, component, &format!("component.{id}"), &validation)?;
        validation.components.insert(id, component);
    }

    // Each trigger type's tables, validated by the type itself.
    let mut by_type: BTreeMap<String, RawTables> = BTreeMap::new();
    for (type_name, settings) in raw.application.trigger {
        by_type.entry(type_name).or_default().settings = Some(settings);
    }
    for (type_name, tables) in raw.trigger {
        by_type.entry(type_name).or_default().triggers = tables;
    }
    let mut triggers = Vec::new();
    for (type_name, tables) in by_type {
        let location = if tables.triggers.is_empty() {
            format!("application.trigger.{type_name}")
        } else {
            format!("trigger.{type_name}")
        };
        match trigger::validate_type(&type_name, tables, &mut validation) {
            Some(validated) => triggers.extend(validated?),
            None => {
                return Err(err(
                    location,
                    format!(
                        "this host runs no `{type_name}` triggers; it runs: {} (`up --skip-unsupported-triggers` runs the rest of the app and leaves these out)",
                        TRIGGER_TYPES.join(", ")
                    ),
                ));
            }
        }
    }

    for (field, set) in [
        ("application.targets", !raw.application.targets.is_empty()),
        ("application.tool", !raw.application.tool.is_empty()),
    ] {
        if set {
            tracing::debug!("{field}: no meaning to this host; ignored");
        }
    }
    let components = validation.components;
    Ok(App {
        name: raw.application.name,
        origin: file.to_path_buf(),
        base_dir: base_dir.to_path_buf(),
        variables,
        components,
        triggers,
    })
}

/// What validating components and triggers needs to know about the whole manifest, and the
/// components validated so far (inline ones join as their triggers are validated).
pub struct Validation<'a> {
    file: &'a Path,
    base_dir: &'a Path,
    /// The manifest's text, for line numbers; `None` for a locked app.
    text: Option<&'a str>,
    variables: &'a BTreeMap<String, VariableDecl>,
    components: BTreeMap<String, Component>,
}

impl Validation<'_> {
    /// An error at `location` (`trigger.redis[0].channel`) of the file being validated.
    pub fn error(&self, location: &str, message: String) -> ManifestError {
        ManifestError::at(self.file, location, message)
    }

    /// Reads a trigger type's table into its serde struct; an error names the field, and the
    /// line the table starts on.
    pub(crate) fn deserialize<T: serde::de::DeserializeOwned>(
        &self,
        table: RawTable,
        location: &str,
    ) -> Result<T, ManifestError> {
        serde_path_to_error::deserialize(table.value).map_err(|error| {
            let path = error.path().to_string();
            let field = error.path().iter().rev().find_map(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                _ => None,
            });
            let location = if path == "." {
                location.to_owned()
            } else {
                format!("{location}.{path}")
            };
            let mut message = error.into_inner().to_string();
            if let (Some(text), Some(offset)) = (self.text, table.offset) {
                let line = line_of(text, offset, field.as_deref());
                message.push_str(&format!(" (line {line})"));
            }
            self.error(&location, message)
        })
    }

    /// Splits a trigger table into what every type has (`id`, `component`, and our handler
    /// limits `handler_timeout`, `max_memory` and `max_table_elements`) and the rest, which the
    /// type reads.
    pub(crate) fn split_trigger_table(
        &self,
        mut table: RawTable,
        location: &str,
    ) -> Result<(Option<String>, RawComponentRef, HandlerLimits, RawTable), ManifestError> {
        let serde_json::Value::Object(fields) = &mut table.value else {
            return Err(self.error(location, "expected a table".into()));
        };
        let mut take = |name: &str| fields.remove(name);
        let (id, component) = (take("id"), take("component"));
        let (timeout, max_memory) = (take("handler_timeout"), take("max_memory"));
        let max_table_elements = take("max_table_elements");
        let offset = table.offset;
        let field = |value: serde_json::Value| RawTable {
            value,
            offset,
            location: None,
        };
        let id = id
            .map(|id| self.deserialize::<String>(field(id), &format!("{location}.id")))
            .transpose()?;
        let component = component.ok_or_else(|| {
            self.error(
                location,
                "missing field `component`: name a component (`component = \"my-component\"`) or define one inline".into(),
            )
        })?;
        let component = self.deserialize(field(component), &format!("{location}.component"))?;
        let timeout = timeout
            .map(|value| {
                let at = format!("{location}.handler_timeout");
                let text: String = self.deserialize(field(value), &at)?;
                self.duration(&text, &at, "\"30s\" or \"500ms\"")
            })
            .transpose()?;
        let max_memory = max_memory
            .map(|value| {
                let at = format!("{location}.max_memory");
                let text: String = self.deserialize(field(value), &at)?;
                parse_memory_size(&text).map_err(|message| self.error(&at, message))
            })
            .transpose()?;
        let max_table_elements = max_table_elements
            .map(|value| {
                let at = format!("{location}.max_table_elements");
                match self.deserialize::<usize>(field(value), &at)? {
                    0 => Err(self.error(&at, "must be at least 1".into())),
                    elements => Ok(elements),
                }
            })
            .transpose()?;
        let limits = HandlerLimits {
            timeout,
            max_memory,
            max_table_elements,
        };
        Ok((id, component, limits, table))
    }

    /// A duration field (humantime: `"250ms"`, `"1m 30s"`), at least 1 ms; an error shows
    /// `examples` of what to write.
    pub fn duration(
        &self,
        text: &str,
        location: &str,
        examples: &str,
    ) -> Result<std::time::Duration, ManifestError> {
        match humantime::parse_duration(text) {
            Ok(duration) if duration >= std::time::Duration::from_millis(1) => Ok(duration),
            Ok(_) => Err(self.error(
                location,
                format!("\"{text}\" is shorter than the 1ms minimum"),
            )),
            Err(error) => Err(self.error(
                location,
                format!("\"{text}\" is not a duration ({error}): write e.g. {examples}"),
            )),
        }
    }

    /// Parses a `{{ var }}` template whose references must all be declared in [variables].
    pub fn template(&self, text: &str, location: &str) -> Result<Template, ManifestError> {
        let template = Template::parse(text)
            .map_err(|message| ManifestError::at(self.file, location, message))?;
        if let Some(missing) = template
            .references()
            .find(|name| !self.variables.contains_key(*name))
        {
            return Err(ManifestError::at(
                self.file,
                location,
                format!(
                    "refers to `{{{{ {missing} }}}}`, which [variables] does not declare; add `{missing} = {{ default = \"...\" }}` there"
                ),
            ));
        }
        Ok(template)
    }

    /// The id of the component a trigger names, validating an inline one into `components`.
    pub(crate) fn resolve_component(
        &mut self,
        reference: RawComponentRef,
        trigger_id: &str,
        location: &str,
    ) -> Result<String, ManifestError> {
        match reference {
            RawComponentRef::Id(component) if self.components.contains_key(&component) => {
                Ok(component)
            }
            RawComponentRef::Id(component) => {
                let defined: Vec<&str> = self.components.keys().map(String::as_str).collect();
                Err(ManifestError::at(
                    self.file,
                    format!("{location}.component"),
                    format!(
                        "no component `{component}`: define [component.{component}] or use one of: {}",
                        if defined.is_empty() {
                            "(none defined)".to_owned()
                        } else {
                            defined.join(", ")
                        }
                    ),
                ))
            }
            RawComponentRef::Inline(inline) => {
                let component_id = format!("{trigger_id}-component");
                let component = validate_component(
                    &component_id,
                    *inline,
                    &format!("{location}.component"),
                    self,
                )?;
                self.components.insert(component_id.clone(), component);
                Ok(component_id)
            }
        }
    }
}

fn validate_component(
    id: &str,
    raw: RawComponent,
    location: &str,
    context: &Validation,
) -> Result<Component, ManifestError> {
    let file = context.file;
    let base_dir = context.base_dir;
    let err = |field: String, message: String| {
        ManifestError::at(file, format!("{location}.{field}"), message)
    };

    check_component_id(id).map_err(|message| ManifestError::at(file, location, message))?;
    log_ignored_fields(id, &raw);

    if raw.source.contains("://") {
        return Err(err(
            "source".into(),
            format!(
                "\"{}\" is a URL: this host runs local components; build it and give the path of the .wasm file",
                raw.source
            ),
        ));
    }

    let mut component_variables = BTreeMap::new();
    for (name, value) in raw.variables {
        let field = format!("{location}.variables.{name}");
        variables::check_name(&name).map_err(|message| ManifestError::at(file, &field, message))?;
        component_variables.insert(name, context.template(&value, &field)?);
    }

    let mut allowed_outbound_hosts = Vec::new();
    for (index, host) in raw.allowed_outbound_hosts.iter().enumerate() {
        let field = format!("{location}.allowed_outbound_hosts[{index}]");
        let template = context.template(host, &field)?;
        // An entry without `{{ var }}` is checked now; others once their variables resolve.
        if template.references().next().is_none() {
            AllowedHosts::parse(&[host])
                .map_err(|message| ManifestError::at(file, &field, message))?;
        }
        allowed_outbound_hosts.push(template);
    }
    for (index, entry) in raw.allowed_http_hosts.iter().enumerate() {
        let field = format!("{location}.allowed_http_hosts[{index}]");
        for host in AllowedHosts::from_allowed_http_host(entry)
            .map_err(|message| ManifestError::at(file, &field, message))?
        {
            allowed_outbound_hosts.push(context.template(&host, &field)?);
        }
    }

    let mut files = Vec::new();
    for (index, entry) in raw.files.into_iter().enumerate() {
        files.push(match entry {
            RawFileEntry::Pattern(pattern) => {
                check_relative_pattern(&pattern)
                    .map_err(|message| err(format!("files[{index}]"), message))?;
                FileMount::Glob {
                    base_dir: base_dir.to_path_buf(),
                    pattern,
                }
            }
            RawFileEntry::Mount(mount) => {
                if !mount.destination.starts_with('/') {
                    return Err(err(
                        format!("files[{index}].destination"),
                        format!(
                            "\"{}\" is not absolute: write e.g. \"/{}\"",
                            mount.destination, mount.destination
                        ),
                    ));
                }
                FileMount::Path {
                    host_path: base_dir.join(mount.source),
                    guest_path: mount.destination,
                }
            }
        });
    }
    for (index, pattern) in raw.exclude_files.iter().enumerate() {
        check_relative_pattern(pattern)
            .map_err(|message| err(format!("exclude_files[{index}]"), message))?;
    }

    let build = raw.build.map(|build| BuildStep {
        commands: match build.command {
            RawCommands::One(command) => vec![command],
            RawCommands::Many(commands) => commands,
        },
        workdir: base_dir.join(build.workdir.unwrap_or_default()),
    });

    Ok(Component {
        id: id.to_owned(),
        source: base_dir.join(&raw.source),
        variables: component_variables,
        environment: raw.environment,
        allowed_outbound_hosts,
        files,
        exclude_files: raw.exclude_files,
        build,
        key_value_stores: raw.key_value_stores,
        sqlite_databases: raw.sqlite_databases,
    })
}

/// Fields Spin accepts that mean nothing to this host: said at debug level, since a Spin app
/// that sets them must still run here. `dependencies` do mean something (imports another
/// component satisfies); this host does not compose components, so those imports must be ones
/// it provides itself, and it says so.
fn log_ignored_fields(id: &str, raw: &RawComponent) {
    let ignored = [
        ("ai_models", !raw.ai_models.is_empty()),
        ("targets", raw.targets.is_some()),
        ("tool", !raw.tool.is_empty()),
        ("profile", !raw.profile.is_empty()),
        (
            "dependencies_inherit_configuration",
            raw.dependencies_inherit_configuration.is_some(),
        ),
    ];
    for (field, _) in ignored.iter().filter(|(_, set)| *set) {
        tracing::debug!(component = id, "{field}: no meaning to this host; ignored");
    }
    if !raw.dependencies.is_empty() {
        tracing::warn!(
            component = id,
            "dependencies are not composed by this host: {} must be imports it provides",
            raw.dependencies
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// A `files` glob: valid, and relative to the app directory without leaving it.
fn check_relative_pattern(pattern: &str) -> Result<(), String> {
    glob::Pattern::new(pattern)
        .map_err(|error| format!("\"{pattern}\" is not a glob pattern: {error}"))?;
    if pattern.starts_with('/') || pattern.split('/').any(|part| part == "..") {
        return Err(format!(
            "\"{pattern}\" leaves the app directory: use a pattern relative to it, like \"static/**/*\""
        ));
    }
    Ok(())
}

/// Spin's component ids: lowercase kebab-case words of letters and digits.
fn check_component_id(id: &str) -> Result<(), String> {
    let valid = !id.is_empty()
        && id.split('-').all(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && id.starts_with(|c: char| c.is_ascii_lowercase());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid component id `{id}`: use lowercase letters and digits in words joined by `-`, like `my-component`"
        ))
    }
}
