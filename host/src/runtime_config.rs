//! Spin's runtime config file (`--runtime-config-file`, `RUNTIME_CONFIG_FILE`): settings that
//! belong to where an app runs rather than to the app.
//!
//! Read as Spin reads it, and every key is accounted for: the ones this host implements are
//! applied — `state_dir`, `log_dir`, `max_instance_memory`, and `[[variables_provider]]` (or
//! the older `[[config_provider]]`) of `type = "env"` or `"static"` — and any other is an error
//! naming it before anything runs: a section Spin knows but this host does not provide yet says
//! so, and a key Spin does not know either is refused as Spin refuses it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::variables::VariableProvider;

/// What a runtime config file sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeConfig {
    /// `state_dir`: where the app's state (logs, stores) lives; `Some(Unset)` for `""`.
    pub state_dir: Option<UserPath>,
    /// `log_dir`: where component output is written; `Some(Unset)` for `""`.
    pub log_dir: Option<UserPath>,
    /// `max_instance_memory`, in bytes.
    pub max_instance_memory: Option<usize>,
    /// Variable providers, in the file's order (after `--variable`, before the environment's
    /// `SPIN_VARIABLE_<NAME>`).
    pub variable_providers: Vec<VariableProvider>,
}

/// A directory the user gave (`--state-dir`, `--log-dir`, or the runtime config's keys), or an
/// explicit `""`, which turns the directory off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserPath {
    Provided(PathBuf),
    Unset,
}

impl UserPath {
    /// `""` is [`UserPath::Unset`]; anything else a path.
    pub fn from_text(text: &str) -> Self {
        if text.is_empty() {
            UserPath::Unset
        } else {
            UserPath::Provided(PathBuf::from(text))
        }
    }
}

/// Sections of Spin's runtime config that configure what this host does not provide yet, with
/// what they configure.
const NOT_PROVIDED: &[(&str, &str)] = &[
    ("key_value_store", "key-value stores"),
    ("sqlite_database", "SQLite databases"),
    ("llm_compute", "AI models"),
    ("outbound_networking", "outbound networking limits"),
    ("client_tls", "TLS client settings for outbound HTTP"),
    ("outbound_http", "outbound HTTP"),
    ("outbound_redis", "outbound Redis connection limits"),
    ("outbound_pg", "outbound PostgreSQL"),
    ("outbound_mysql", "outbound MySQL"),
    ("outbound_mqtt", "outbound MQTT"),
];

/// `[[variables_provider]] type = "env"`: `<prefix>_<NAME>` from the environment, else from a
/// `.env` file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvProviderConfig {
    #[serde(rename = "type")]
    _type: String,
    prefix: Option<String>,
    dotenv_path: Option<PathBuf>,
}

/// `[[variables_provider]] type = "static"`: values written in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StaticProviderConfig {
    #[serde(rename = "type")]
    _type: String,
    values: BTreeMap<String, String>,
}

/// One `[[variables_provider]]` table as this host provides it.
fn variable_provider(table: toml::Value) -> anyhow::Result<VariableProvider> {
    let kind = table
        .get("type")
        .and_then(toml::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    match kind.as_str() {
        "env" => {
            let config: EnvProviderConfig = table.try_into()?;
            VariableProvider::env(config.prefix, config.dotenv_path.as_deref())
        }
        "static" => {
            let config: StaticProviderConfig = table.try_into()?;
            Ok(VariableProvider::Static(config.values))
        }
        "vault" => bail!("`type = \"vault\"`: this host does not read variables from Vault yet"),
        "azure_key_vault" => bail!(
            "`type = \"azure_key_vault\"`: this host does not read variables from Azure Key Vault yet"
        ),
        other => bail!(
            "`type = \"{other}\"` is not a variables provider: write `type = \"env\"` or `type = \"static\"`"
        ),
    }
}

impl RuntimeConfig {
    /// Reads and checks the runtime config at `path`.
    pub fn load(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the runtime config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("runtime config file {}", path.display()))
    }

    /// Parses runtime config TOML.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut table: toml::Table = toml::from_str(text).context("not valid TOML")?;
        let mut config = RuntimeConfig::default();
        let mut take_path = |key: &str| -> anyhow::Result<Option<UserPath>> {
            match table.remove(key) {
                None => Ok(None),
                Some(toml::Value::String(text)) => Ok(Some(UserPath::from_text(&text))),
                Some(other) => bail!("{key}: expected a path string, found {}", other.type_str()),
            }
        };
        config.state_dir = take_path("state_dir")?;
        config.log_dir = take_path("log_dir")?;
        if let Some(value) = table.remove("max_instance_memory") {
            let bytes = value
                .as_integer()
                .and_then(|bytes| usize::try_from(bytes).ok())
                .with_context(|| {
                    format!("max_instance_memory: expected a number of bytes, found {value}")
                })?;
            crate::limits::parse_memory_bytes(&bytes.to_string())
                .map_err(|message| anyhow::anyhow!("max_instance_memory: {message}"))?;
            config.max_instance_memory = Some(bytes);
        }
        for key in ["variables_provider", "config_provider"] {
            let Some(value) = table.remove(key) else {
                continue;
            };
            let toml::Value::Array(providers) = value else {
                bail!("{key}: expected an array of tables, `[[{key}]]`");
            };
            for (index, provider) in providers.into_iter().enumerate() {
                let provider = variable_provider(provider)
                    .with_context(|| format!("[[{key}]] #{}", index + 1))?;
                config.variable_providers.push(provider);
            }
        }
        if let Some((key, value)) = table.into_iter().next() {
            let shown = match &value {
                toml::Value::Table(labels) => match labels.keys().next() {
                    Some(label) if NOT_PROVIDED.iter().any(|(name, _)| *name == key) => {
                        format!("[{key}.{label}]")
                    }
                    _ => format!("[{key}]"),
                },
                _ => format!("`{key}`"),
            };
            match NOT_PROVIDED.iter().find(|(name, _)| *name == key) {
                Some((_, what)) => bail!(
                    "{shown}: this host does not provide {what} yet; remove the section to run here"
                ),
                None => bail!(
                    "{shown}: unknown key; Spin's runtime config has state_dir, log_dir, \
                     max_instance_memory, [[variables_provider]], and sections for the host APIs \
                     ({})",
                    NOT_PROVIDED
                        .iter()
                        .map(|(name, _)| *name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
        Ok(config)
    }
}

/// Resolves a directory as Spin does: the command line's value first (`""` turns it off), else
/// the runtime config's, else `default`. A relative path is taken from the working directory.
pub fn resolve_dir(
    from_cli: Option<&UserPath>,
    from_config: Option<&UserPath>,
    default: Option<PathBuf>,
) -> std::io::Result<Option<PathBuf>> {
    match from_cli.or(from_config) {
        Some(UserPath::Provided(path)) => std::path::absolute(path).map(Some),
        Some(UserPath::Unset) => Ok(None),
        None => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applied_keys_are_read() {
        let config = RuntimeConfig::parse(
            "state_dir = \"/tmp/state\"\nlog_dir = \"\"\nmax_instance_memory = 1048576\n\
             [[variables_provider]]\ntype = \"static\"\nvalues = { greeting = \"hi\" }\n",
        )
        .unwrap();
        assert_eq!(
            config.state_dir,
            Some(UserPath::Provided("/tmp/state".into()))
        );
        assert_eq!(config.log_dir, Some(UserPath::Unset));
        assert_eq!(config.max_instance_memory, Some(1 << 20));
        assert_eq!(
            config.variable_providers,
            [VariableProvider::Static(BTreeMap::from([(
                "greeting".to_owned(),
                "hi".to_owned()
            )]))]
        );
    }

    #[test]
    fn sections_not_provided_are_named() {
        let error = RuntimeConfig::parse(
            "[key_value_store.cache]\ntype = \"redis\"\nurl = \"redis://127.0.0.1\"\n",
        )
        .unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            "[key_value_store.cache]: this host does not provide key-value stores yet; remove the section to run here"
        );
        let error = RuntimeConfig::parse("[[variables_provider]]\ntype = \"vault\"\n").unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            "[[variables_provider]] #1: `type = \"vault\"`: this host does not read variables from Vault yet"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let error = RuntimeConfig::parse("colour = \"blue\"\n").unwrap_err();
        assert!(
            format!("{error:#}").starts_with("`colour`: unknown key; Spin's runtime config has"),
            "{error:#}"
        );
    }

    #[test]
    fn the_command_line_wins_and_empty_turns_off() {
        let cli = UserPath::Provided("/from/cli".into());
        let config = UserPath::Provided("/from/config".into());
        let default = Some(PathBuf::from("/default"));
        assert_eq!(
            resolve_dir(Some(&cli), Some(&config), default.clone()).unwrap(),
            Some(PathBuf::from("/from/cli"))
        );
        assert_eq!(
            resolve_dir(None, Some(&config), default.clone()).unwrap(),
            Some(PathBuf::from("/from/config"))
        );
        assert_eq!(
            resolve_dir(Some(&UserPath::Unset), Some(&config), default.clone()).unwrap(),
            None
        );
        assert_eq!(resolve_dir(None, None, default.clone()).unwrap(), default);
    }
}
