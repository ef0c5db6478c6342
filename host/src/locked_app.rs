//! Spin's locked app: what `spin up` hands a trigger plugin through `SPIN_LOCKED_URL`.
//!
//! The locked app is converted to the same raw form `spin.toml` parses into and validated by the
//! same code, so both produce the same [`App`]. As in Spin, unknown fields are ignored, except
//! in `must_understand`; trigger types this host does not run are left to whoever does (Spin
//! runs its built-in triggers itself), and only the components of the triggers this host runs
//! are loaded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::app::App;
use crate::app_spec::{RawApplication, RawManifest, RawVariable, validate};
use crate::validation::{ManifestError, RawComponent, RawFileEntry, RawFileMount, RawTable};

#[derive(Deserialize)]
struct LockedApp {
    spin_lock_version: u32,
    #[serde(default)]
    must_understand: Vec<String>,
    #[serde(default)]
    metadata: LockedMetadata,
    #[serde(default)]
    host_requirements: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    variables: BTreeMap<String, LockedVariable>,
    triggers: Vec<LockedTrigger>,
    components: Vec<LockedComponent>,
}

#[derive(Deserialize, Default)]
struct LockedMetadata {
    name: Option<String>,
    version: Option<String>,
    #[serde(default)]
    authors: Vec<String>,
    description: Option<String>,
    /// Application-level trigger settings, by type (`[application.trigger.<type>]`).
    #[serde(default)]
    triggers: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct LockedVariable {
    default: Option<String>,
    #[serde(default)]
    secret: bool,
}

#[derive(Deserialize)]
struct LockedTrigger {
    id: String,
    trigger_type: String,
    trigger_config: serde_json::Value,
}

#[derive(Deserialize)]
struct LockedComponent {
    id: String,
    #[serde(default)]
    metadata: LockedComponentMetadata,
    source: LockedSource,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    files: Vec<LockedContentPath>,
    #[serde(default)]
    config: BTreeMap<String, String>,
    /// Components this one imports from, composed before it runs (Spin's component
    /// dependencies).
    #[serde(default)]
    dependencies: BTreeMap<String, serde_json::Value>,
    /// Components its trigger wraps it in, by kind (`middleware`), from the trigger's
    /// `dependencies` (from Spin 4.1 on).
    #[serde(default)]
    trigger_dependencies: BTreeMap<String, Vec<serde_json::Value>>,
    /// What the host must support to run it (`middleware = "required"`), which Spin's lock
    /// marks with `must_understand = ["component_host_requirements"]`.
    #[serde(default)]
    host_requirements: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct LockedComponentMetadata {
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    /// The manifest's `sqlite_databases`.
    #[serde(default)]
    databases: Vec<String>,
    #[serde(default)]
    ai_models: Vec<String>,
}

#[derive(Deserialize)]
struct LockedSource {
    content_type: String,
    source: Option<String>,
}

#[derive(Deserialize)]
struct LockedContentPath {
    source: Option<String>,
    path: String,
}

pub use crate::trigger_registry::TRIGGER_TYPES;

/// Loads the locked app at `url` (a `file://` URL). Relative paths resolve against
/// `local_app_dir` (Spin's `SPIN_LOCAL_APP_DIR`) when set, else the locked file's directory.
pub fn load(url: &str, local_app_dir: Option<&Path>) -> Result<App, ManifestError> {
    let path = file_path(url)
        .map_err(|message| ManifestError::at(Path::new(url), "SPIN_LOCKED_URL", message))?;
    let text = std::fs::read_to_string(&path)
        .map_err(|error| ManifestError::at(&path, "locked app", format!("cannot read: {error}")))?;
    let base_dir = match local_app_dir {
        Some(dir) => dir.to_path_buf(),
        None => path.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    parse(&text, &path, &base_dir)
}

/// The id of every component of the locked app at `url`, including those of triggers this host
/// leaves to others (what Spin checks `--follow` against).
pub fn component_ids(url: &str) -> Result<Vec<String>, ManifestError> {
    #[derive(Deserialize)]
    struct Components {
        components: Vec<Id>,
    }
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    let path = file_path(url)
        .map_err(|message| ManifestError::at(Path::new(url), "SPIN_LOCKED_URL", message))?;
    let text = std::fs::read_to_string(&path)
        .map_err(|error| ManifestError::at(&path, "locked app", format!("cannot read: {error}")))?;
    let locked: Components = serde_json::from_str(&text)
        .map_err(|error| ManifestError::at(&path, "components", error.to_string()))?;
    Ok(locked
        .components
        .into_iter()
        .map(|component| component.id)
        .collect())
}

/// Parses locked-app JSON as if read from `file`.
pub fn parse(text: &str, file: &Path, base_dir: &Path) -> Result<App, ManifestError> {
    let err = |location: &str, message: String| ManifestError::at(file, location, message);
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let locked: LockedApp = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| err(&error.path().to_string(), error.into_inner().to_string()))?;
    check_understood(&locked).map_err(|(location, message)| err(location, message))?;
    let (triggers, used_components) = our_triggers(locked.triggers, file)?;
    let mut components = BTreeMap::new();
    for (index, component) in locked.components.into_iter().enumerate() {
        if !used_components.contains(&component.id) {
            continue;
        }
        let location = format!("components[{index}]");
        check_component_runs_here(&component)
            .map_err(|(field, message)| err(&format!("{location}.{field}"), message))?;
        let id = component.id.clone();
        components.insert(id, convert_component(component, &location, file)?);
    }
    let raw = RawManifest {
        spin_manifest_version: 2,
        application: RawApplication {
            trigger: our_trigger_settings(locked.metadata.triggers),
            name: locked
                .metadata
                .name
                .unwrap_or_else(|| "locked-app".to_owned()),
            version: locked.metadata.version,
            authors: locked.metadata.authors,
            description: locked.metadata.description,
            targets: Vec::new(),
            tool: BTreeMap::new(),
        },
        variables: locked
            .variables
            .into_iter()
            .map(|(name, variable)| (name, manifest_variable(variable)))
            .collect(),
        trigger: triggers,
        component: components,
    };
    validate(raw, file, base_dir, None)
}

/// Refuses a lock this host cannot read faithfully: a newer lock version, a feature it must
/// understand, a host requirement; the error's location and message.
fn check_understood(locked: &LockedApp) -> Result<(), (&'static str, String)> {
    if locked.spin_lock_version > 1 {
        return Err((
            "spin_lock_version",
            format!(
                "version {} is newer than this host reads (0 and 1)",
                locked.spin_lock_version
            ),
        ));
    }
    // The two Spin writes: this host checks both sections (the components' for the components
    // it runs, in `check_component_runs_here`).
    if let Some(unknown) = locked.must_understand.iter().find(|field| {
        !["host_requirements", "component_host_requirements"].contains(&field.as_str())
    }) {
        return Err((
            "must_understand",
            format!("this host does not understand `{unknown}`"),
        ));
    }
    let required = required_features(&locked.host_requirements);
    if !required.is_empty() {
        return Err((
            "host_requirements",
            format!("this host does not support: {}", required.join(", ")),
        ));
    }
    Ok(())
}

/// The host features `requirements` marks as needed (anything but `optional`).
fn required_features(requirements: &BTreeMap<String, serde_json::Value>) -> Vec<&str> {
    requirements
        .iter()
        .filter(|(_, value)| value.as_str() != Some("optional"))
        .map(|(key, _)| key.as_str())
        .collect()
}

/// Refuses a component this host would run differently from Spin: one that needs a host
/// feature it lacks, or one its trigger wraps in trigger dependencies (middleware), which it
/// does not compose. Components of other trigger types are not its business.
fn check_component_runs_here(component: &LockedComponent) -> Result<(), (&'static str, String)> {
    let required = required_features(&component.host_requirements);
    if !required.is_empty() {
        return Err((
            "host_requirements",
            format!(
                "component `{}` requires what this host does not support: {} (trigger \
                 dependencies are not composed by this host yet; remove the trigger's \
                 `dependencies` to run it here)",
                component.id,
                required.join(", ")
            ),
        ));
    }
    if !component.trigger_dependencies.is_empty() {
        return Err((
            "trigger_dependencies",
            format!(
                "component `{}` has trigger dependencies ({}), which this host does not compose \
                 yet; remove the trigger's `dependencies` to run it here",
                component.id,
                keys(&component.trigger_dependencies)
            ),
        ));
    }
    Ok(())
}

fn keys<V>(map: &BTreeMap<String, V>) -> String {
    map.keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `--precompose-only`: the bytes of component `id` of the locked app at `url`, composed with
/// its trigger dependencies. Without any, that is its `.wasm` unchanged, as Spin's own triggers
/// write it; with them (or with component dependencies, which Spin composes before it asks a
/// trigger), an error until this host composes them.
pub(crate) fn precompose(url: &str, id: &str) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    let path = file_path(url)
        .map_err(anyhow::Error::msg)
        .context("SPIN_LOCKED_URL")?;
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the locked app {}", path.display()))?;
    let locked: LockedApp = serde_json::from_str(&text)
        .with_context(|| format!("reading the locked app {}", path.display()))?;
    let component = locked
        .components
        .into_iter()
        .find(|component| component.id == id)
        .with_context(|| {
            format!("--precompose-component-id: component `{id}` does not exist in the locked app")
        })?;
    if !component.trigger_dependencies.is_empty() {
        anyhow::bail!(
            "cannot precompose component `{id}`: its trigger dependencies ({}) are not composed \
             by this host yet; remove the trigger's `dependencies` to push this app",
            keys(&component.trigger_dependencies)
        );
    }
    if !component.dependencies.is_empty() {
        anyhow::bail!(
            "cannot precompose component `{id}`: its component dependencies ({}) are composed by \
             Spin, not by this host",
            keys(&component.dependencies)
        );
    }
    anyhow::ensure!(
        component.source.content_type == "application/wasm",
        "component `{id}`: source content type `{}` is not `application/wasm`",
        component.source.content_type
    );
    let source = component
        .source
        .source
        .with_context(|| format!("component `{id}` has no source URL"))?;
    let source = file_path(&source)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("component `{id}`'s source"))?;
    std::fs::read(&source)
        .with_context(|| format!("reading component `{id}`'s source {}", source.display()))
}

/// Trigger tables by trigger type, as `[[trigger.<type>]]` holds them.
type TablesByType = BTreeMap<String, Vec<RawTable>>;

/// Each trigger of a type this host runs, its id beside its config (the manifest's shape), by
/// type; and the components they use.
fn our_triggers(
    triggers: Vec<LockedTrigger>,
    file: &Path,
) -> Result<(TablesByType, BTreeSet<String>), ManifestError> {
    let mut ours = TablesByType::new();
    let mut used_components = BTreeSet::new();
    for (index, trigger) in triggers.into_iter().enumerate() {
        if !TRIGGER_TYPES.contains(&trigger.trigger_type.as_str()) {
            tracing::debug!(
                trigger = %trigger.id,
                "leaving `{}` trigger to its own runner",
                trigger.trigger_type
            );
            continue;
        }
        let location = format!("triggers[{index}].trigger_config");
        let serde_json::Value::Object(mut config) = trigger.trigger_config else {
            return Err(ManifestError::at(file, &location, "expected an object"));
        };
        if let Some(component) = config.get("component").and_then(|id| id.as_str()) {
            used_components.insert(component.to_owned());
        }
        config.insert("id".into(), serde_json::Value::String(trigger.id));
        ours.entry(trigger.trigger_type)
            .or_default()
            .push(RawTable {
                value: serde_json::Value::Object(config),
                offset: None,
                location: Some(location),
            });
    }
    Ok((ours, used_components))
}

/// `metadata.triggers`' settings of the trigger types this host runs, as
/// `[application.trigger.<type>]` tables.
fn our_trigger_settings(
    settings: BTreeMap<String, serde_json::Value>,
) -> BTreeMap<String, RawTable> {
    settings
        .into_iter()
        .filter(|(type_name, _)| TRIGGER_TYPES.contains(&type_name.as_str()))
        .map(|(type_name, value)| {
            let table = RawTable {
                value,
                offset: None,
                location: Some(format!("metadata.triggers.{type_name}")),
            };
            (type_name, table)
        })
        .collect()
}

/// A locked variable as `[variables]` writes it: required when it has no default.
fn manifest_variable(variable: LockedVariable) -> RawVariable {
    RawVariable {
        description: None,
        required: variable.default.is_none(),
        default: variable.default,
        secret: variable.secret,
    }
}

fn convert_component(
    parts: LockedComponent,
    location: &str,
    file: &Path,
) -> Result<RawComponent, ManifestError> {
    let err = |field: &str, message: String| {
        ManifestError::at(file, format!("{location}.{field}"), message)
    };
    if parts.source.content_type != "application/wasm" {
        return Err(err(
            "source.content_type",
            format!("`{}` is not `application/wasm`", parts.source.content_type),
        ));
    }
    let source = parts.source.source.ok_or_else(|| {
        err(
            "source",
            "no `source` URL: this host loads components from file:// URLs".into(),
        )
    })?;
    let source = file_path(&source).map_err(|message| err("source.source", message))?;
    let mut files = Vec::new();
    for (index, content) in parts.files.into_iter().enumerate() {
        let field = format!("files[{index}]");
        let url = content.source.ok_or_else(|| {
            err(
                &field,
                "no `source` URL: files are mounted from file:// URLs".into(),
            )
        })?;
        // Spin locks each file a glob matched as its own entry; directories stay whole.
        let host_path = file_path(&url).map_err(|message| err(&field, message))?;
        files.push(RawFileEntry::Mount(RawFileMount {
            source: host_path.display().to_string(),
            destination: content.path,
        }));
    }
    Ok(RawComponent {
        source: source.display().to_string(),
        variables: parts.config,
        environment: parts.env,
        allowed_outbound_hosts: parts.metadata.allowed_outbound_hosts,
        files,
        key_value_stores: parts.metadata.key_value_stores,
        sqlite_databases: parts.metadata.databases,
        ai_models: parts.metadata.ai_models,
        ..RawComponent::default()
    })
}

/// The local path of a `file://` URL.
fn file_path(url: &str) -> Result<PathBuf, String> {
    let parsed =
        url::Url::parse(url).map_err(|error| format!("\"{url}\" is not a URL: {error}"))?;
    if parsed.scheme() != "file" {
        return Err(format!("\"{url}\" is not a file:// URL"));
    }
    parsed
        .to_file_path()
        .map_err(|()| format!("\"{url}\" is not a local file path"))
}
