//! Renders a template from `templates/` as `spin new` and `spin add` would, following Spin's
//! rules: `metadata/spin-template.toml` (manifest version 1, unknown fields rejected), parameters
//! with defaults and patterns, Liquid with the standard library plus Spin's filters, the values
//! `project-name`, `authors` and `output-path`, `.tmpl` suffixes stripped, and for `add` the
//! snippets appended to the existing `spin.toml`, with `manifest_entry_exists` conditions.
//! Anything Spin would reject is an error here too.

mod filters;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(tag = "manifest_version")]
enum RawManifest {
    #[serde(rename = "1")]
    V1(ManifestV1),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestV1 {
    id: String,
    #[allow(dead_code)]
    description: Option<String>,
    #[allow(dead_code)]
    trigger_type: Option<String>,
    #[allow(dead_code)]
    tags: Option<BTreeSet<String>>,
    new_application: Option<Variant>,
    add_component: Option<Variant>,
    #[serde(default)]
    parameters: BTreeMap<String, Parameter>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Variant {
    supported: Option<bool>,
    #[serde(default)]
    skip_files: Vec<String>,
    #[serde(default)]
    skip_parameters: Vec<String>,
    #[serde(default)]
    snippets: BTreeMap<String, String>,
    #[serde(default)]
    conditions: BTreeMap<String, Conditional>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Conditional {
    condition: Condition,
    #[serde(default)]
    skip_files: Vec<String>,
    #[serde(default)]
    skip_parameters: Vec<String>,
    #[serde(default)]
    skip_snippets: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Condition {
    manifest_entry_exists: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Parameter {
    #[serde(rename = "type")]
    data_type: String,
    #[allow(dead_code)]
    prompt: String,
    default: Option<String>,
    pattern: Option<String>,
    allowed_values: Option<Vec<String>>,
}

/// A template directory, loaded and checked.
pub struct Template {
    dir: PathBuf,
    manifest: ManifestV1,
}

/// Who is generating: the `authors` value.
pub const DEFAULT_AUTHORS: &str = "Test Author <test@example.com>";

impl Template {
    /// Loads `dir/metadata/spin-template.toml`.
    pub fn load(dir: impl AsRef<Path>) -> anyhow::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let path = dir.join("metadata/spin-template.toml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let RawManifest::V1(manifest) =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        for (name, parameter) in &manifest.parameters {
            if parameter.data_type != "string" {
                bail!(
                    "parameter `{name}`: type `{}` is not supported, only `string`",
                    parameter.data_type
                );
            }
            if let Some(pattern) = &parameter.pattern {
                regex::Regex::new(pattern)
                    .with_context(|| format!("parameter `{name}`: invalid pattern"))?;
            }
        }
        Ok(Template { dir, manifest })
    }

    pub fn id(&self) -> &str {
        &self.manifest.id
    }

    /// `spin new -t <id> <name> --output <output>`: renders the content into `output`.
    pub fn new_application(
        &self,
        name: &str,
        output: &Path,
        values: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let variant = self.manifest.new_application.as_ref();
        if variant.and_then(|variant| variant.supported) == Some(false) {
            bail!("template `{}` does not support new applications", self.id());
        }
        let default_variant = Variant::default();
        let variant = variant.unwrap_or(&default_variant);
        if !variant.snippets.is_empty() {
            bail!(
                "Spin doesn't know what to do with snippets outside an 'add component' operation"
            );
        }
        let skip = Skips::from_variant(variant, None);
        let globals = self.values(name, output, values, &skip)?;
        self.render_content(output, &globals, &skip)
    }

    /// `spin add -t <id> <name>` next to `manifest`: renders the content into
    /// `<manifest dir>/<output_path>` and appends the snippets to `manifest`.
    pub fn add_component(
        &self,
        name: &str,
        manifest: &Path,
        output_path: &str,
        values: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let Some(variant) = self.manifest.add_component.as_ref() else {
            bail!(
                "template `{}` does not support adding a component",
                self.id()
            );
        };
        if variant.supported == Some(false) {
            bail!(
                "template `{}` does not support adding a component",
                self.id()
            );
        }
        let existing = std::fs::read_to_string(manifest)
            .with_context(|| format!("reading {}", manifest.display()))?;
        let existing: toml::Table =
            toml::from_str(&existing).with_context(|| format!("parsing {}", manifest.display()))?;
        let skip = Skips::from_variant(variant, Some(&existing));
        let globals = self.values(name, Path::new(output_path), values, &skip)?;
        let root = manifest.parent().context("the manifest has no directory")?;
        self.render_content(&root.join(output_path), &globals, &skip)?;

        let parser = filters::parser()?;
        let mut appended = String::new();
        for (id, file) in &variant.snippets {
            if skip.snippets.contains(id) {
                continue;
            }
            if !matches!(id.as_str(), "component" | "application_trigger") {
                bail!("Spin doesn't know what to do with snippet {id}");
            }
            let path = self.dir.join("metadata/snippets").join(file);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("Error reading snippet file {file}"))?;
            appended.push('\n');
            appended.push_str(
                &render(&parser, &text, &globals)
                    .with_context(|| format!("rendering snippet {file}"))?,
            );
        }
        let mut text = std::fs::read_to_string(manifest)?;
        text.push_str(&appended);
        std::fs::write(manifest, text)?;
        Ok(())
    }

    /// Spin's special values, then each parameter's value: given, or its default.
    fn values(
        &self,
        name: &str,
        output: &Path,
        given: &[(&str, &str)],
        skip: &Skips,
    ) -> anyhow::Result<liquid::Object> {
        let given: HashMap<&str, &str> = given.iter().copied().collect();
        for key in given.keys() {
            if !self.manifest.parameters.contains_key(*key) {
                bail!("Template does not contain a parameter named '{key}'");
            }
        }
        let mut object = liquid::Object::new();
        let mut set = |key: &str, value: &str| {
            object.insert(
                key.to_owned().into(),
                liquid::model::Value::scalar(value.to_owned()),
            );
        };
        set("project-name", name);
        set("authors", DEFAULT_AUTHORS);
        set("username", "test");
        set("output-path", &output.display().to_string());
        for (key, parameter) in &self.manifest.parameters {
            if skip.parameters.contains(key) {
                continue;
            }
            let value = match (given.get(key.as_str()), &parameter.default) {
                (Some(value), _) => value.to_string(),
                (None, Some(default)) => default.clone(),
                (None, None) => {
                    bail!("missing a value for parameter `{key}`, which has no default")
                }
            };
            if let Some(pattern) = &parameter.pattern {
                let anchored = regex::Regex::new(&format!("^(?:{pattern})$"))?;
                if !anchored.is_match(&value) {
                    bail!("{key}: '{value}' does not match the pattern {pattern}");
                }
            }
            if let Some(allowed) = &parameter.allowed_values
                && !allowed.contains(&value)
            {
                bail!("{key}: '{value}' is not one of {}", allowed.join(", "));
            }
            set(key, &value);
        }
        Ok(object)
    }

    fn render_content(
        &self,
        output: &Path,
        globals: &liquid::Object,
        skip: &Skips,
    ) -> anyhow::Result<()> {
        let parser = filters::parser()?;
        let content = self.dir.join("content");
        let mut files = Vec::new();
        list_files(&content, &mut files)?;
        for file in files {
            let relative = file.strip_prefix(&content)?.to_path_buf();
            let relative_text = relative.to_string_lossy().replace('\\', "/");
            if skip.files.contains(&relative_text) {
                continue;
            }
            let target = output.join(match relative_text.strip_suffix(".tmpl") {
                Some(stripped) => PathBuf::from(stripped),
                None => relative,
            });
            let bytes = std::fs::read(&file)?;
            let rendered = match String::from_utf8(bytes) {
                Ok(text) => render(&parser, &text, globals)
                    .with_context(|| format!("rendering {relative_text}"))?
                    .into_bytes(),
                Err(binary) => binary.into_bytes(),
            };
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&target, rendered)?;
        }
        Ok(())
    }
}

/// What a variant and its satisfied conditions leave out.
struct Skips {
    files: Vec<String>,
    parameters: BTreeSet<String>,
    snippets: BTreeSet<String>,
}

impl Skips {
    fn from_variant(variant: &Variant, existing_manifest: Option<&toml::Table>) -> Self {
        let mut skips = Skips {
            files: variant.skip_files.clone(),
            parameters: variant.skip_parameters.iter().cloned().collect(),
            snippets: BTreeSet::new(),
        };
        for conditional in variant.conditions.values() {
            let holds = existing_manifest.is_some_and(|manifest| {
                entry_exists(manifest, &conditional.condition.manifest_entry_exists)
            });
            if holds {
                skips.files.extend(conditional.skip_files.iter().cloned());
                skips
                    .parameters
                    .extend(conditional.skip_parameters.iter().cloned());
                skips
                    .snippets
                    .extend(conditional.skip_snippets.iter().cloned());
            }
        }
        skips
    }
}

/// Whether a dotted path such as `application.trigger.redis` names an entry of the manifest.
fn entry_exists(manifest: &toml::Table, dotted: &str) -> bool {
    let mut current: Option<&toml::Value> = None;
    for (index, key) in dotted.split('.').enumerate() {
        current = if index == 0 {
            manifest.get(key)
        } else {
            current.and_then(|value| value.get(key))
        };
        if current.is_none() {
            return false;
        }
    }
    true
}

fn render(parser: &liquid::Parser, text: &str, globals: &liquid::Object) -> anyhow::Result<String> {
    Ok(parser.parse(text)?.render(globals)?)
}

fn list_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|entry| entry.path());
    for entry in entries {
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            list_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
