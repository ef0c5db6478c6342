//! Loading a manifest-version-2 `spin.toml` into the [`App`] model.
//!
//! Parsing is serde with `deny_unknown_fields` throughout; validation then checks what types
//! cannot (references, intervals, variable names). Every error names the file, the table and the
//! field, and is reported before anything runs.

use std::path::{Path, PathBuf};

use crate::app::App;
use crate::app_spec::{RawManifest, validate};
use crate::trigger_registry::TRIGGER_TYPES;
pub use crate::validation::ManifestError;

/// Loads and validates the manifest at `path`.
///
/// ```no_run
/// let app = spin_trigger_host::manifest::load("examples/timer-hello/spin.toml")?;
/// println!("{} triggers", app.triggers().len());
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
        .map_err(|error| ManifestError::new(format!("{}: cannot read: {error}", path.display())))?;
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
