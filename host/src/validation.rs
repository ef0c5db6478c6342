//! The vocabulary every app source is validated in, whichever file (or builder) it came from:
//! [`ManifestError`], the [`Validation`] context a trigger type checks its tables with, a
//! component as written ([`RawComponent`]) and its validation into a [`Component`].

use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

use crate::allowed_hosts::AllowedHosts;
use crate::component::{BuildStep, Component, ComponentSource, FileMount};
use crate::limits::{
    HandlerLimits, TABLE_ELEMENTS_RANGE, check_duration, check_in_range, parse_memory_size,
};
use crate::template::{Template, VariableDecl, check_name};

/// Why a manifest could not be loaded. Its text is the whole diagnosis.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ManifestError(String);

impl ManifestError {
    pub(crate) fn new(message: String) -> Self {
        ManifestError(message)
    }

    pub(crate) fn at(file: &Path, location: impl fmt::Display, message: impl fmt::Display) -> Self {
        ManifestError(format!("{}: {location}: {message}", file.display()))
    }
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
    /// Read as TOML first: JSON has no infinity or NaN, and would turn `speedup = nan` into an
    /// absent field, so such a value is refused here, by its field's name.
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = toml::Spanned::<toml::Value>::deserialize(deserializer)?;
        let offset = spanned.span().start;
        let value = spanned.into_inner();
        if let Some((field, number)) = non_finite_float(&value, "") {
            return Err(de::Error::custom(format!(
                "`{field} = {number}` is not a finite number: write one, like `{field} = 2`"
            )));
        }
        let value = serde_json::to_value(value).map_err(de::Error::custom)?;
        Ok(RawTable {
            offset: Some(offset),
            value,
            location: None,
        })
    }
}

/// The first float in `value` that is infinite or NaN, with the dotted path of its field.
fn non_finite_float(value: &toml::Value, path: &str) -> Option<(String, f64)> {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        toml::Value::Float(number) if !number.is_finite() => Some((path.to_owned(), *number)),
        toml::Value::Table(table) => table
            .iter()
            .find_map(|(key, value)| non_finite_float(value, &join(key))),
        toml::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, value)| non_finite_float(value, &format!("{path}[{index}]"))),
        _ => None,
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

#[derive(Deserialize, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawComponent {
    pub(crate) source: String,
    /// The component's bytes, when the builder was given them (`source` then names it).
    #[serde(skip)]
    pub(crate) source_bytes: Option<std::sync::Arc<[u8]>>,
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
#[derive(Clone, Debug)]
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

#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFileMount {
    pub(crate) source: String,
    pub(crate) destination: String,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBuild {
    pub(crate) command: RawCommands,
    pub(crate) workdir: Option<String>,
    #[serde(default)]
    #[allow(dead_code)] // For `spin watch`; this host does not watch.
    pub(crate) watch: Vec<String>,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(untagged)]
pub(crate) enum RawCommands {
    One(String),
    Many(Vec<String>),
}

/// One trigger type's tables, as read from `spin.toml`, the locked app or the builder, before
/// validation.
#[derive(Default)]
pub(crate) struct RawTables {
    /// `[application.trigger.<type>]`, if present.
    pub settings: Option<RawTable>,
    /// Each `[[trigger.<type>]]` (or locked trigger, its id under `id`).
    pub triggers: Vec<RawTable>,
}

/// Where the `index`th `[[trigger.<trigger_type>]]` is, as errors name it.
pub(crate) fn trigger_location(trigger_type: &str, index: usize) -> String {
    format!("trigger.{trigger_type}[{index}]")
}

/// What validating components and triggers needs to know about the whole manifest, and the
/// components validated so far (inline ones join as their triggers are validated).
pub struct Validation<'a> {
    pub(crate) file: &'a Path,
    pub(crate) base_dir: &'a Path,
    /// The manifest's text, for line numbers; `None` for a locked app.
    pub(crate) text: Option<&'a str>,
    pub(crate) variables: &'a BTreeMap<String, VariableDecl>,
    pub(crate) components: BTreeMap<String, Component>,
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
                    elements => self.in_range(elements, &TABLE_ELEMENTS_RANGE, &at),
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

    /// A duration field (humantime: `"250ms"`, `"1m 30s"`) in [`DURATION_RANGE`]; an error
    /// shows `examples` of what to write.
    pub fn duration(
        &self,
        text: &str,
        location: &str,
        examples: &str,
    ) -> Result<std::time::Duration, ManifestError> {
        let duration = humantime::parse_duration(text).map_err(|error| {
            self.error(
                location,
                format!("\"{text}\" is not a duration ({error}): write e.g. {examples}"),
            )
        })?;
        check_duration(text, duration).map_err(|message| self.error(location, message))?;
        Ok(duration)
    }

    /// A whole-number field in `range`, the field named when outside it.
    pub fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
        &self,
        value: T,
        range: &RangeInclusive<T>,
        location: &str,
    ) -> Result<T, ManifestError> {
        check_in_range(value, range).map_err(|message| self.error(location, message))?;
        Ok(value)
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

/// Validates one component (`location` is its table) into the model: its id, source,
/// variables, outbound hosts, files and build step.
pub(crate) fn validate_component(
    id: &str,
    raw: RawComponent,
    location: &str,
    context: &Validation,
) -> Result<Component, ManifestError> {
    let file = context.file;
    check_component_id(id).map_err(|message| ManifestError::at(file, location, message))?;
    log_ignored_fields(id, &raw);
    if raw.source_bytes.is_none() && raw.source.contains("://") {
        return Err(ManifestError::at(
            file,
            format!("{location}.source"),
            format!(
                "\"{}\" is a URL: this host runs local components; build it and give the path of the .wasm file",
                raw.source
            ),
        ));
    }
    let mut variables = BTreeMap::new();
    for (name, value) in raw.variables {
        let field = format!("{location}.variables.{name}");
        check_name(&name).map_err(|message| ManifestError::at(file, &field, message))?;
        variables.insert(name, context.template(&value, &field)?);
    }
    let allowed_outbound_hosts = validate_outbound_hosts(
        &raw.allowed_outbound_hosts,
        &raw.allowed_http_hosts,
        location,
        context,
    )?;
    let files = validate_files(raw.files, &raw.exclude_files, location, context)?;
    let base_dir = context.base_dir;
    let build = raw.build.map(|build| BuildStep {
        commands: match build.command {
            RawCommands::One(command) => vec![command],
            RawCommands::Many(commands) => commands,
        },
        workdir: base_dir.join(build.workdir.unwrap_or_default()),
    });
    Ok(Component {
        id: id.to_owned(),
        source: match raw.source_bytes {
            Some(bytes) => ComponentSource::Bytes(bytes),
            None => ComponentSource::File(base_dir.join(&raw.source)),
        },
        variables,
        environment: raw.environment,
        allowed_outbound_hosts,
        files,
        exclude_files: raw.exclude_files,
        build,
        key_value_stores: raw.key_value_stores,
        sqlite_databases: raw.sqlite_databases,
    })
}

/// `allowed_outbound_hosts`, each a template (checked now when it has no `{{ var }}`, else
/// once its variables resolve), then Spin's older `allowed_http_hosts` converted as Spin does.
fn validate_outbound_hosts(
    outbound: &[String],
    http: &[String],
    location: &str,
    context: &Validation,
) -> Result<Vec<Template>, ManifestError> {
    let mut allowed = Vec::new();
    for (index, host) in outbound.iter().enumerate() {
        let field = format!("{location}.allowed_outbound_hosts[{index}]");
        let template = context.template(host, &field)?;
        if template.references().next().is_none() {
            AllowedHosts::parse(&[host]).map_err(|message| context.error(&field, message))?;
        }
        allowed.push(template);
    }
    for (index, entry) in http.iter().enumerate() {
        let field = format!("{location}.allowed_http_hosts[{index}]");
        for host in AllowedHosts::from_allowed_http_host(entry)
            .map_err(|message| context.error(&field, message))?
        {
            allowed.push(context.template(&host, &field)?);
        }
    }
    Ok(allowed)
}

/// `files` (globs relative to the app directory, and `{ source, destination }` mounts at
/// absolute guest paths) and `exclude_files` globs.
fn validate_files(
    entries: Vec<RawFileEntry>,
    exclude: &[String],
    location: &str,
    context: &Validation,
) -> Result<Vec<FileMount>, ManifestError> {
    let err =
        |field: String, message: String| context.error(&format!("{location}.{field}"), message);
    let mut files = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        files.push(match entry {
            RawFileEntry::Pattern(pattern) => {
                check_relative_pattern(&pattern)
                    .map_err(|message| err(format!("files[{index}]"), message))?;
                FileMount::Glob {
                    base_dir: context.base_dir.to_path_buf(),
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
                    host_path: context.base_dir.join(mount.source),
                    guest_path: mount.destination,
                }
            }
        });
    }
    for (index, pattern) in exclude.iter().enumerate() {
        check_relative_pattern(pattern)
            .map_err(|message| err(format!("exclude_files[{index}]"), message))?;
    }
    Ok(files)
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
