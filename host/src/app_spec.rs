//! An app as every source writes it (the manifest's shape: `spin.toml`, a locked app and the
//! builder are each read into a [`RawManifest`]), and its validation into an [`App`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::app::{App, Trigger};
use crate::trigger_registry::{self, TRIGGER_TYPES};
use crate::validation::{
    ManifestError, RawComponent, RawTable, RawTables, Validation, trigger_location,
    validate_component,
};
use crate::variable_templates::{VariableDecl, check_name};

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

/// Checks what serde cannot and builds the [`App`]: the manifest version, the variables, the
/// components, then each trigger type's tables. Reports the first error, in the file's order.
pub(crate) fn validate(
    raw: RawManifest,
    file: &Path,
    base_dir: &Path,
    text: Option<&str>,
) -> Result<App, ManifestError> {
    if raw.spin_manifest_version != 2 {
        return Err(ManifestError::at(
            file,
            "spin_manifest_version",
            format!(
                "version {} is not supported: this host reads manifest version 2 (`spin_manifest_version = 2`)",
                raw.spin_manifest_version
            ),
        ));
    }
    let variables = validate_variables(raw.variables, file)?;
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
    let triggers = validate_triggers(raw.application.trigger, raw.trigger, &mut validation)?;
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

/// `[variables]`: Spin's names, each with a default or required (not both).
fn validate_variables(
    raw: BTreeMap<String, RawVariable>,
    file: &Path,
) -> Result<BTreeMap<String, VariableDecl>, ManifestError> {
    let mut variables = BTreeMap::new();
    for (name, decl) in raw {
        let location = format!("variables.{name}");
        let err = |message: String| ManifestError::at(file, &location, message);
        check_name(&name).map_err(err)?;
        if decl.required && decl.default.is_some() {
            return Err(err(
                "a variable cannot be both `required = true` and have a `default`; keep one".into(),
            ));
        }
        if !decl.required && decl.default.is_none() {
            return Err(err(
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
    Ok(variables)
}

/// A trigger's `dependencies` (Spin 4.1's trigger dependencies, e.g. `dependencies.middleware =
/// [{ path = "auth.wasm" }]`): components its trigger wraps the handler in. This host does not
/// compose them, and running the handler without its middleware would skip what it guards, so
/// any is an error; an empty table is taken out.
fn take_trigger_dependencies(
    table: &mut RawTable,
    type_name: &str,
    index: usize,
    validation: &Validation,
) -> Result<(), ManifestError> {
    let Some(object) = table.value.as_object_mut() else {
        return Ok(());
    };
    match object.remove("dependencies") {
        None => Ok(()),
        Some(serde_json::Value::Object(dependencies)) if dependencies.is_empty() => Ok(()),
        Some(dependencies) => {
            let kinds = dependencies
                .as_object()
                .map(|kinds| kinds.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            Err(validation.error(
                &format!("{}.dependencies", trigger_location(type_name, index)),
                format!(
                    "trigger dependencies ({kinds}) are not composed by this host yet; remove \
                     them to run this trigger here"
                ),
            ))
        }
    }
}

/// Each trigger type's settings and tables, validated by the type itself; a type this host does
/// not run is an error naming the ones it does.
fn validate_triggers(
    settings: BTreeMap<String, RawTable>,
    tables: BTreeMap<String, Vec<RawTable>>,
    validation: &mut Validation,
) -> Result<Vec<Trigger>, ManifestError> {
    let mut by_type: BTreeMap<String, RawTables> = BTreeMap::new();
    for (type_name, settings) in settings {
        by_type.entry(type_name).or_default().settings = Some(settings);
    }
    for (type_name, mut tables) in tables {
        for (index, table) in tables.iter_mut().enumerate() {
            take_trigger_dependencies(table, &type_name, index, validation)?;
        }
        by_type.entry(type_name).or_default().triggers = tables;
    }
    let mut triggers = Vec::new();
    for (type_name, tables) in by_type {
        let location = if tables.triggers.is_empty() {
            format!("application.trigger.{type_name}")
        } else {
            format!("trigger.{type_name}")
        };
        match trigger_registry::validate_type(&type_name, tables, validation) {
            Some(validated) => triggers.extend(validated?),
            None => {
                return Err(validation.error(
                    &location,
                    format!(
                        "this host runs no `{type_name}` triggers; it runs: {} (`up --skip-unsupported-triggers` runs the rest of the app and leaves these out)",
                        TRIGGER_TYPES.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(triggers)
}
