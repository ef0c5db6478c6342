//! Application variables: declarations, `{{ var }}` templates, and resolution at start-up.
//!
//! Values come, in order, from `--variable` (`name=value`, `name=@file`, `@file.json`,
//! `@file.toml`), the runtime config's variables providers, the environment
//! (`SPIN_VARIABLE_<NAME>`, then a `.env` file), then the declared default, as in Spin.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::variable_templates::{Template, VariableDecl, check_name};

/// Where variable values come from, highest priority first.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Providers {
    /// `--variable` values.
    pub cli: BTreeMap<String, String>,
    /// The runtime config's `[[variables_provider]]`s, in order.
    pub configured: Vec<VariableProvider>,
    /// The process environment, read for `SPIN_VARIABLE_<NAME>`.
    pub env: BTreeMap<String, String>,
    /// `SPIN_VARIABLE_<NAME>` entries of a `.env` file in the working directory, as Spin reads
    /// it, below the environment.
    pub dotenv: BTreeMap<String, String>,
}

/// A runtime config's variables provider (`[[variables_provider]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariableProvider {
    /// `type = "env"`: `<PREFIX>_<NAME>` from the environment, else from its `.env` file.
    Env {
        /// `SPIN_VARIABLE` unless the runtime config sets `prefix`.
        prefix: String,
        /// The process environment, read when the provider was made.
        env: BTreeMap<String, String>,
        /// The `.env` file's entries.
        dotenv: BTreeMap<String, String>,
    },
    /// `type = "static"`: values written in the runtime config.
    Static(BTreeMap<String, String>),
}

impl VariableProvider {
    /// An environment provider with `prefix` (default `SPIN_VARIABLE`) and a `.env` file
    /// (default `.env`, which may be missing).
    pub fn env(prefix: Option<String>, dotenv_path: Option<&Path>) -> anyhow::Result<Self> {
        Ok(VariableProvider::Env {
            prefix: prefix.unwrap_or_else(|| ENV_PREFIX.to_owned()),
            env: std::env::vars().collect(),
            dotenv: read_dotenv(dotenv_path.unwrap_or(Path::new(".env")))?,
        })
    }

    fn lookup(&self, name: &str) -> Option<&String> {
        match self {
            VariableProvider::Env {
                prefix,
                env,
                dotenv,
            } => {
                let key = prefixed_env_name(prefix, name);
                env.get(&key).or_else(|| dotenv.get(&key))
            }
            VariableProvider::Static(values) => values.get(name),
        }
    }
}

/// The entries of a `.env` file; none when it does not exist.
fn read_dotenv(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    dotenvy::from_path_iter(path)
        .and_then(|entries| entries.collect())
        .with_context(|| format!("reading {}", path.display()))
}

impl Providers {
    /// Providers from `--variable` values and this process's environment (and `.env`).
    pub fn from_process(cli: BTreeMap<String, String>) -> Self {
        Providers {
            cli,
            configured: Vec::new(),
            env: std::env::vars().collect(),
            dotenv: read_dotenv(Path::new(".env")).unwrap_or_else(|error| {
                tracing::warn!("ignoring .env: {}", crate::error_text::one_line(&error));
                BTreeMap::new()
            }),
        }
    }

    fn lookup(&self, name: &str, decl: &VariableDecl) -> Option<String> {
        let env_key = env_name(name);
        self.cli
            .get(name)
            .or_else(|| {
                self.configured
                    .iter()
                    .find_map(|provider| provider.lookup(name))
            })
            .or_else(|| self.env.get(&env_key))
            .or_else(|| self.dotenv.get(&env_key))
            .or(decl.default.as_ref())
            .cloned()
    }
}

/// The prefix of the environment variables that provide variable values, unless a runtime
/// config's `type = "env"` provider sets its own.
const ENV_PREFIX: &str = "SPIN_VARIABLE";

/// The environment variable that provides `name`: `SPIN_VARIABLE_<NAME>`.
pub fn env_name(name: &str) -> String {
    prefixed_env_name(ENV_PREFIX, name)
}

/// `<PREFIX>_<NAME>`, as Spin's environment provider names the variable for `name`.
fn prefixed_env_name(prefix: &str, name: &str) -> String {
    format!("{prefix}_{}", name.to_ascii_uppercase())
}

/// Parses one `--variable name=value` argument.
pub fn parse_cli_pair(pair: &str) -> Result<(String, String), String> {
    let (name, value) = pair
        .split_once('=')
        .ok_or_else(|| format!("`{pair}` is not `name=value`"))?;
    check_name(name)?;
    Ok((name.to_owned(), value.to_owned()))
}

/// One `--variable` argument, in any form Spin takes: `name=value`, `name=@file` (the file's
/// text), `@file.json` or `@file.toml` (a table of names to string values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariableSource {
    /// `name=value`.
    Literal(String, String),
    /// `name=@file`: the file's text.
    FileContent(String, PathBuf),
    /// `@file.json`: an object of names to string values.
    JsonFile(PathBuf),
    /// `@file.toml`: a table of names to string values.
    TomlFile(PathBuf),
}

impl std::str::FromStr for VariableSource {
    type Err = String;

    /// ```
    /// use spin_trigger_host::variables::VariableSource;
    /// assert_eq!(
    ///     "token=@secret.txt".parse::<VariableSource>(),
    ///     Ok(VariableSource::FileContent("token".into(), "secret.txt".into()))
    /// );
    /// ```
    fn from_str(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix('@') {
            let path = PathBuf::from(path);
            return match path.extension().and_then(|extension| extension.to_str()) {
                Some("json") => Ok(VariableSource::JsonFile(path)),
                Some("toml") => Ok(VariableSource::TomlFile(path)),
                _ => Err(format!(
                    "`{text}`: a variables file must end in .json or .toml"
                )),
            };
        }
        let (name, value) = parse_cli_pair(text).map_err(|_| {
            format!("`{text}` is not `name=value`, `name=@file`, `@file.json` or `@file.toml`")
        })?;
        Ok(match value.strip_prefix('@') {
            Some(path) => VariableSource::FileContent(name, PathBuf::from(path)),
            None => VariableSource::Literal(name, value),
        })
    }
}

impl VariableSource {
    /// The values this source gives, reading its file if it has one.
    pub fn values(&self) -> anyhow::Result<BTreeMap<String, String>> {
        let read = |path: &Path| {
            std::fs::read_to_string(path)
                .with_context(|| format!("--variable: reading {}", path.display()))
        };
        Ok(match self {
            VariableSource::Literal(name, value) => BTreeMap::from([(name.clone(), value.clone())]),
            VariableSource::FileContent(name, path) => {
                BTreeMap::from([(name.clone(), read(path)?)])
            }
            VariableSource::JsonFile(path) => {
                serde_json::from_str(&read(path)?).with_context(|| {
                    format!(
                        "--variable: {} is not a JSON object of string values",
                        path.display()
                    )
                })?
            }
            VariableSource::TomlFile(path) => toml::from_str(&read(path)?).with_context(|| {
                format!(
                    "--variable: {} is not a TOML table of string values",
                    path.display()
                )
            })?,
        })
    }

    /// Every source's values merged in order: the last value of a name wins, as in Spin.
    pub fn merge_all(sources: &[VariableSource]) -> anyhow::Result<BTreeMap<String, String>> {
        let mut values = BTreeMap::new();
        for source in sources {
            values.extend(source.values()?);
        }
        Ok(values)
    }
}

/// Every variable's value, resolved once at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolvedVariables {
    /// Application variable name to value.
    pub application: BTreeMap<String, String>,
    /// Component id to its variables' rendered values.
    pub components: BTreeMap<String, BTreeMap<String, String>>,
}

impl ResolvedVariables {
    /// Resolves every application variable `declared` in `origin` and renders each component's
    /// variables. A required variable without a value, or a `--variable` the app does not
    /// declare, is an error. [`App::resolve_variables`](crate::App::resolve_variables) calls it
    /// with an app's declarations.
    pub fn resolve<'a>(
        origin: &Path,
        declared: &BTreeMap<String, VariableDecl>,
        components: impl IntoIterator<Item = (&'a String, &'a BTreeMap<String, Template>)>,
        providers: &Providers,
    ) -> anyhow::Result<Self> {
        for name in providers.cli.keys() {
            if !declared.contains_key(name) {
                bail!(
                    "--variable {name}=...: {} declares no variable `{name}` in [variables]",
                    origin.display()
                );
            }
        }
        let mut application = BTreeMap::new();
        for (name, decl) in declared {
            match providers.lookup(name, decl) {
                Some(value) => {
                    application.insert(name.clone(), value);
                }
                None => bail!(
                    "variable `{name}` is required but has no value: pass `--variable {name}=<value>` or set {}",
                    env_name(name)
                ),
            }
        }
        let mut rendered = BTreeMap::new();
        for (id, variables) in components {
            let mut values = BTreeMap::new();
            for (name, template) in variables {
                let value = template
                    .render(&application)
                    .with_context(|| format!("rendering variable `{name}` of component `{id}`"))?;
                values.insert(name.clone(), value);
            }
            rendered.insert(id.clone(), values);
        }
        Ok(ResolvedVariables {
            application,
            components: rendered,
        })
    }

    /// Renders a template against the application variables (trigger settings use this).
    pub fn render(&self, template: &Template) -> anyhow::Result<String> {
        template.render(&self.application)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_sources_take_every_form_spin_takes() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("token.txt");
        std::fs::write(&text, "s3cret\n").unwrap();
        let json = dir.path().join("vars.json");
        std::fs::write(&json, r#"{"greeting": "from json", "region": "us"}"#).unwrap();
        let toml_file = dir.path().join("vars.toml");
        std::fs::write(&toml_file, "greeting = \"from toml\"\n").unwrap();
        let sources: Vec<VariableSource> = [
            format!("@{}", json.display()),
            format!("@{}", toml_file.display()),
            format!("token=@{}", text.display()),
            "plain=a=b".to_owned(),
        ]
        .iter()
        .map(|text| text.parse().unwrap())
        .collect();
        let values = VariableSource::merge_all(&sources).unwrap();
        assert_eq!(values["greeting"], "from toml", "the last source wins");
        assert_eq!(values["region"], "us");
        assert_eq!(
            values["token"], "s3cret\n",
            "a file's text, as Spin reads it"
        );
        assert_eq!(values["plain"], "a=b");
        assert_eq!(
            "@vars.yaml".parse::<VariableSource>().unwrap_err(),
            "`@vars.yaml`: a variables file must end in .json or .toml"
        );
        assert!("novalue".parse::<VariableSource>().is_err());
    }

    #[test]
    fn configured_providers_come_after_the_command_line_and_before_the_environment() {
        let decl = VariableDecl {
            default: Some("default".into()),
            ..VariableDecl::default()
        };
        let mut providers = Providers {
            configured: vec![VariableProvider::Env {
                prefix: "MYAPP".into(),
                env: BTreeMap::new(),
                dotenv: BTreeMap::from([("MYAPP_GREETING".into(), "from dotenv".into())]),
            }],
            env: BTreeMap::from([("SPIN_VARIABLE_GREETING".into(), "from env".into())]),
            ..Providers::default()
        };
        assert_eq!(providers.lookup("greeting", &decl).unwrap(), "from dotenv");
        providers.cli.insert("greeting".into(), "from cli".into());
        assert_eq!(providers.lookup("greeting", &decl).unwrap(), "from cli");
        assert_eq!(providers.lookup("other", &decl).unwrap(), "default");
    }

    #[test]
    fn cli_pairs_split_on_the_first_equals() {
        assert_eq!(
            parse_cli_pair("query=a=b").unwrap(),
            ("query".to_owned(), "a=b".to_owned())
        );
        assert_eq!(
            parse_cli_pair("novalue").unwrap_err(),
            "`novalue` is not `name=value`"
        );
    }
}
