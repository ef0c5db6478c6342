//! A component as written ([`RawComponent`]) validated into the model's [`Component`]: its id,
//! source, variables, outbound hosts, files and build step.

use std::collections::BTreeMap;

use super::raw::{RawCommands, RawComponent, RawFileEntry};
use super::{ManifestError, Validation};
use crate::allowed_hosts::AllowedHosts;
use crate::component::{BuildStep, Component, ComponentSource, FileMount};
use crate::variable_templates::{Template, check_name};

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
