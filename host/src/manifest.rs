//! Loading a manifest-version-2 `spin.toml` into the [`App`] model.
//!
//! Parsing is serde with `deny_unknown_fields` throughout; validation then checks what types
//! cannot (references, intervals, variable names). Every error names the file, the table and the
//! field, and is reported before anything runs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

use crate::allowed_hosts::AllowedHosts;
use crate::app::{
    App, BuildStep, Component, FileMount, RedisSettings, RedisTrigger, StreamSettings,
    StreamTrigger, TimerSettings, TimerTrigger,
};
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
/// println!("{} timer triggers", app.timer_triggers.len());
/// # Ok::<(), spin_trigger_host::manifest::ManifestError>(())
/// ```
pub fn load(path: impl AsRef<Path>) -> Result<App, ManifestError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .map_err(|error| ManifestError(format!("{}: cannot read: {error}", path.display())))?;
    let base_dir = path
        .canonicalize()
        .ok()
        .and_then(|absolute| absolute.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    parse(&text, path, &base_dir)
}

/// Parses manifest `text` as if read from `file`, resolving relative paths against `base_dir`.
pub fn parse(text: &str, file: &Path, base_dir: &Path) -> Result<App, ManifestError> {
    let raw = deserialize(text, file)?;
    validate(raw, file, base_dir)
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
    #[serde(default)]
    pub(crate) trigger: RawTriggers,
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
    #[serde(default)]
    pub(crate) trigger: RawAppTriggerSettings,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAppTriggerSettings {
    pub(crate) timer: Option<RawTimerSettings>,
    pub(crate) redis: Option<RawRedisSettings>,
    #[serde(rename = "redis-stream")]
    pub(crate) redis_stream: Option<RawRedisSettings>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRedisSettings {
    pub(crate) address: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimerSettings {
    pub(crate) speedup: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVariable {
    pub(crate) default: Option<String>,
    #[serde(default)]
    pub(crate) required: bool,
    #[serde(default)]
    pub(crate) secret: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTriggers {
    #[serde(default)]
    pub(crate) timer: Vec<RawTimerTrigger>,
    #[serde(default)]
    pub(crate) redis: Vec<RawRedisTrigger>,
    #[serde(default, rename = "redis-stream")]
    pub(crate) redis_stream: Vec<RawStreamTrigger>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStreamTrigger {
    pub(crate) id: Option<String>,
    pub(crate) component: RawComponentRef,
    pub(crate) stream: String,
    pub(crate) address: Option<String>,
    pub(crate) group: Option<String>,
    pub(crate) consumer: Option<String>,
    pub(crate) max_in_flight: Option<usize>,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) dead_letter: Option<String>,
    pub(crate) claim_idle: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRedisTrigger {
    pub(crate) id: Option<String>,
    pub(crate) component: RawComponentRef,
    pub(crate) channel: String,
    pub(crate) address: Option<String>,
    /// Ours: how many messages the component handles at once (default 1, publish order).
    pub(crate) max_in_flight: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimerTrigger {
    pub(crate) id: Option<String>,
    pub(crate) component: RawComponentRef,
    pub(crate) interval_secs: Option<u64>,
    /// Ours: a sub-second interval in humantime syntax (`"250ms"`).
    pub(crate) interval: Option<String>,
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

    let mut components = BTreeMap::new();
    for (id, component) in raw.component {
        let context = Context {
            file,
            base_dir,
            variables: &variables,
        };
        let component = validate_component(&id, component, &format!("component.{id}"), &context)?;
        components.insert(id, component);
    }

    let speedup = raw
        .application
        .trigger
        .timer
        .and_then(|timer| timer.speedup)
        .unwrap_or(1.0);
    if !(speedup.is_finite() && speedup > 0.0) {
        return Err(err(
            "application.trigger.timer.speedup".into(),
            format!("{speedup} is not a positive number: `speedup = 2` runs timers twice as often"),
        ));
    }

    let context = Context {
        file,
        base_dir,
        variables: &variables,
    };
    let mut timer_triggers = Vec::new();
    for (index, trigger) in raw.trigger.timer.into_iter().enumerate() {
        let location = format!("trigger.timer[{index}]");
        let id = trigger.id.unwrap_or_else(|| format!("timer-{}", index + 1));
        let component =
            context.resolve_component(trigger.component, &id, &location, &mut components)?;
        let interval = match (trigger.interval_secs, trigger.interval) {
            (Some(_), Some(_)) => {
                return Err(err(
                    location,
                    "set either `interval_secs` or `interval`, not both".into(),
                ));
            }
            (None, None) => {
                return Err(err(
                    location,
                    "missing the interval: add `interval_secs = 5` or `interval = \"250ms\"`"
                        .into(),
                ));
            }
            (Some(0), None) => {
                return Err(err(
                    format!("{location}.interval_secs"),
                    "the interval must be at least 1 second; for less, use `interval = \"250ms\"`"
                        .into(),
                ));
            }
            (Some(secs), None) => Duration::from_secs(secs),
            (None, Some(text)) => match humantime::parse_duration(&text) {
                Ok(duration) if duration >= Duration::from_millis(1) => duration,
                Ok(_) => {
                    return Err(err(
                        format!("{location}.interval"),
                        format!("\"{text}\" is shorter than the 1ms minimum"),
                    ));
                }
                Err(error) => {
                    return Err(err(
                        format!("{location}.interval"),
                        format!(
                            "\"{text}\" is not a duration ({error}): write e.g. \"250ms\", \"2s\" or \"1m 30s\""
                        ),
                    ));
                }
            },
        };
        timer_triggers.push(TimerTrigger {
            id,
            component,
            interval,
        });
    }

    let redis = RedisSettings {
        address: raw
            .application
            .trigger
            .redis
            .and_then(|redis| redis.address)
            .map(|address| context.template(&address, "application.trigger.redis.address"))
            .transpose()?,
    };
    let mut redis_triggers = Vec::new();
    for (index, trigger) in raw.trigger.redis.into_iter().enumerate() {
        let location = format!("trigger.redis[{index}]");
        let id = trigger.id.unwrap_or_else(|| format!("redis-{}", index + 1));
        let component =
            context.resolve_component(trigger.component, &id, &location, &mut components)?;
        let channel = context.template(&trigger.channel, &format!("{location}.channel"))?;
        if trigger.channel.trim().is_empty() {
            return Err(err(
                format!("{location}.channel"),
                "the channel is empty: write e.g. `channel = \"orders\"` or a pattern like `\"orders.*\"`".into(),
            ));
        }
        let address = match trigger.address {
            Some(address) => context.template(&address, &format!("{location}.address"))?,
            None => redis.address.clone().ok_or_else(|| {
                err(
                    location.clone(),
                    "no Redis address: set `address` here or in [application.trigger.redis]".into(),
                )
            })?,
        };
        let max_in_flight = trigger.max_in_flight.unwrap_or(1);
        if max_in_flight == 0 {
            return Err(err(
                format!("{location}.max_in_flight"),
                "must be at least 1 (the default, which keeps publish order)".into(),
            ));
        }
        redis_triggers.push(RedisTrigger {
            id,
            component,
            channel,
            address,
            max_in_flight,
        });
    }

    let stream = StreamSettings {
        address: raw
            .application
            .trigger
            .redis_stream
            .and_then(|settings| settings.address)
            .map(|address| context.template(&address, "application.trigger.redis-stream.address"))
            .transpose()?,
    };
    let mut stream_triggers = Vec::new();
    for (index, trigger) in raw.trigger.redis_stream.into_iter().enumerate() {
        let location = format!("trigger.redis-stream[{index}]");
        stream_triggers.push(validate_stream_trigger(
            trigger,
            index,
            &location,
            &stream,
            &context,
            &mut components,
        )?);
    }

    Ok(App {
        name: raw.application.name,
        origin: file.to_path_buf(),
        base_dir: base_dir.to_path_buf(),
        variables,
        components,
        timer: TimerSettings { speedup },
        timer_triggers,
        redis,
        redis_triggers,
        stream,
        stream_triggers,
    })
}

fn validate_stream_trigger(
    trigger: RawStreamTrigger,
    index: usize,
    location: &str,
    settings: &StreamSettings,
    context: &Context,
    components: &mut BTreeMap<String, Component>,
) -> Result<StreamTrigger, ManifestError> {
    let err = |field: &str, message: String| {
        ManifestError::at(context.file, format!("{location}.{field}"), message)
    };
    let id = trigger
        .id
        .unwrap_or_else(|| format!("redis-stream-{}", index + 1));
    let component = context.resolve_component(trigger.component, &id, location, components)?;
    if trigger.stream.trim().is_empty() {
        return Err(err(
            "stream",
            "the stream is empty: write e.g. `stream = \"orders\"`".into(),
        ));
    }
    let stream = context.template(&trigger.stream, &format!("{location}.stream"))?;
    let address = match trigger.address {
        Some(address) => context.template(&address, &format!("{location}.address"))?,
        None => settings.address.clone().ok_or_else(|| {
            ManifestError::at(
                context.file,
                location,
                "no Redis address: set `address` here or in [application.trigger.redis-stream]",
            )
        })?,
    };
    let optional_template = |value: Option<String>, field: &str| {
        value
            .map(|text| {
                if text.trim().is_empty() {
                    Err(err(field, "is empty: leave it out for the default".into()))
                } else {
                    context.template(&text, &format!("{location}.{field}"))
                }
            })
            .transpose()
    };
    let group = optional_template(trigger.group, "group")?;
    let consumer = optional_template(trigger.consumer, "consumer")?;
    let dead_letter = optional_template(trigger.dead_letter, "dead_letter")?;
    let max_in_flight = trigger.max_in_flight.unwrap_or(1);
    if max_in_flight == 0 {
        return Err(err(
            "max_in_flight",
            "must be at least 1 (the default: one entry at a time)".into(),
        ));
    }
    let max_attempts = trigger.max_attempts.unwrap_or(5);
    if max_attempts == 0 {
        return Err(err(
            "max_attempts",
            "must be at least 1 (1: no retry; the default is 5)".into(),
        ));
    }
    let claim_idle = match trigger.claim_idle {
        None => Duration::from_secs(30),
        Some(text) => match humantime::parse_duration(&text) {
            Ok(duration) if duration >= Duration::from_millis(1) => duration,
            Ok(_) => {
                return Err(err(
                    "claim_idle",
                    format!("\"{text}\" is shorter than the 1ms minimum"),
                ));
            }
            Err(error) => {
                return Err(err(
                    "claim_idle",
                    format!("\"{text}\" is not a duration ({error}): write e.g. \"30s\" or \"2m\""),
                ));
            }
        },
    };
    Ok(StreamTrigger {
        id,
        component,
        stream,
        address,
        group,
        consumer,
        max_in_flight,
        max_attempts,
        dead_letter,
        claim_idle,
    })
}

/// What validating components and triggers needs to know about the whole manifest.
struct Context<'a> {
    file: &'a Path,
    base_dir: &'a Path,
    variables: &'a BTreeMap<String, VariableDecl>,
}

impl Context<'_> {
    /// Parses a `{{ var }}` template whose references must all be declared in [variables].
    fn template(&self, text: &str, location: &str) -> Result<Template, ManifestError> {
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
    fn resolve_component(
        &self,
        reference: RawComponentRef,
        trigger_id: &str,
        location: &str,
        components: &mut BTreeMap<String, Component>,
    ) -> Result<String, ManifestError> {
        match reference {
            RawComponentRef::Id(component) if components.contains_key(&component) => Ok(component),
            RawComponentRef::Id(component) => {
                let defined: Vec<&str> = components.keys().map(String::as_str).collect();
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
                components.insert(component_id.clone(), component);
                Ok(component_id)
            }
        }
    }
}

fn validate_component(
    id: &str,
    raw: RawComponent,
    location: &str,
    context: &Context,
) -> Result<Component, ManifestError> {
    let file = context.file;
    let base_dir = context.base_dir;
    let err = |field: String, message: String| {
        ManifestError::at(file, format!("{location}.{field}"), message)
    };

    check_component_id(id).map_err(|message| ManifestError::at(file, location, message))?;

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
    })
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
