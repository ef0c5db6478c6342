//! Spin's runtime config file (`--runtime-config-file`, `RUNTIME_CONFIG_FILE`): settings that
//! belong to where an app runs rather than to the app.
//!
//! Read as Spin reads it, and every key is accounted for: the ones this host implements are
//! applied — `state_dir`, `log_dir`, `max_instance_memory`, `[[variables_provider]]` (or
//! the older `[[config_provider]]`) of `type = "env"` or `"static"`, `[key_value_store.<label>]`
//! of `type = "spin"` or `"redis"`, and `[sqlite_database.<label>]` of `type = "spin"` — and any
//! other is an error
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
    /// `[key_value_store.<label>]` sections, by label.
    pub key_value_stores: BTreeMap<String, KeyValueStoreConfig>,
    /// `[sqlite_database.<label>]` sections, by label.
    pub sqlite_databases: BTreeMap<String, SqliteDatabaseConfig>,
}

/// Where a key-value store's data lives, as `[key_value_store.<label>]` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValueStoreConfig {
    /// `type = "spin"`: a SQLite file (a relative `path` is taken from the runtime config
    /// file's directory, as Spin takes it); `None`: a store that lasts as long as the process.
    Spin {
        /// The file; `None` for a store that lasts as long as the process.
        path: Option<PathBuf>,
    },
    /// `type = "redis"`: a Redis server's database, which several hosts may share.
    Redis {
        /// `redis://` or `rediss://`, with any credentials.
        url: String,
    },
}

/// Where a SQLite database lives, as `[sqlite_database.<label>]` (`type = "spin"`) says: a file
/// (a relative `path` is taken from the working directory, as Spin takes it), or `None` for a
/// database that lasts as long as the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteDatabaseConfig {
    /// The file; `None` for a database that lasts as long as the process.
    pub path: Option<PathBuf>,
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

/// `[key_value_store.<label>] type = "spin"`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpinKeyValueConfig {
    #[serde(rename = "type")]
    _type: String,
    path: Option<PathBuf>,
}

/// `[key_value_store.<label>] type = "redis"`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedisKeyValueConfig {
    #[serde(rename = "type")]
    _type: String,
    url: String,
}

/// `[sqlite_database.<label>] type = "spin"`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpinSqliteConfig {
    #[serde(rename = "type")]
    _type: String,
    path: Option<PathBuf>,
}

/// The `type` of a `[section.<label>]` table, `""` when it has none.
fn table_type(table: &toml::Value) -> String {
    table
        .get("type")
        .and_then(toml::Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// One `[key_value_store.<label>]` table; a relative `path` is taken from `base_dir`.
fn key_value_store(table: toml::Value, base_dir: &Path) -> anyhow::Result<KeyValueStoreConfig> {
    match table_type(&table).as_str() {
        "spin" => {
            let config: SpinKeyValueConfig = table.try_into()?;
            Ok(KeyValueStoreConfig::Spin {
                path: config.path.map(|path| base_dir.join(path)),
            })
        }
        "redis" => {
            let config: RedisKeyValueConfig = table.try_into()?;
            Ok(KeyValueStoreConfig::Redis { url: config.url })
        }
        other @ ("azure_cosmos" | "aws_dynamo") => bail!(
            "`type = \"{other}\"`: this host does not provide this store type; write `type = \"spin\"` (a SQLite file) or `type = \"redis\"`"
        ),
        other => bail!(
            "`type = \"{other}\"` is not a key-value store type: write `type = \"spin\"` (a SQLite file, `path`) or `type = \"redis\"` (`url`)"
        ),
    }
}

/// One `[sqlite_database.<label>]` table; a relative `path` is taken from the working directory.
fn sqlite_database(table: toml::Value) -> anyhow::Result<SqliteDatabaseConfig> {
    match table_type(&table).as_str() {
        "spin" => {
            let config: SpinSqliteConfig = table.try_into()?;
            let path = config.path.map(std::path::absolute).transpose()?;
            Ok(SqliteDatabaseConfig { path })
        }
        "libsql" => bail!(
            "`type = \"libsql\"`: this host does not connect to libSQL servers; write `type = \"spin\"` (a SQLite file, `path`)"
        ),
        other => bail!(
            "`type = \"{other}\"` is not a SQLite database type: write `type = \"spin\"` (a SQLite file, `path`)"
        ),
    }
}

/// The `[section.<label>]` tables of `key`, each read by `read`.
fn labelled_sections<T>(
    table: &mut toml::Table,
    key: &str,
    mut read: impl FnMut(toml::Value) -> anyhow::Result<T>,
) -> anyhow::Result<BTreeMap<String, T>> {
    let Some(value) = table.remove(key) else {
        return Ok(BTreeMap::new());
    };
    let toml::Value::Table(sections) = value else {
        bail!("{key}: expected tables, `[{key}.<label>]`");
    };
    sections
        .into_iter()
        .map(|(label, section)| {
            let config = read(section).with_context(|| format!("[{key}.{label}]"))?;
            Ok((label, config))
        })
        .collect()
}

/// One `[[variables_provider]]` table as this host provides it.
fn variable_provider(table: toml::Value) -> anyhow::Result<VariableProvider> {
    match table_type(&table).as_str() {
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
        let base_dir = std::path::absolute(path)?
            .parent()
            .map(Path::to_owned)
            .unwrap_or_default();
        Self::parse_in(&text, &base_dir)
            .with_context(|| format!("runtime config file {}", path.display()))
    }

    /// Parses runtime config TOML; relative key-value store paths are taken from the working
    /// directory.
    #[cfg(test)]
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Self::parse_in(text, &std::path::absolute(".")?)
    }

    /// Parses runtime config TOML from a file in `base_dir`.
    fn parse_in(text: &str, base_dir: &Path) -> anyhow::Result<Self> {
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
        config.max_instance_memory = table
            .remove("max_instance_memory")
            .map(max_instance_memory)
            .transpose()?;
        for key in ["variables_provider", "config_provider"] {
            if let Some(value) = table.remove(key) {
                config
                    .variable_providers
                    .extend(variable_providers(key, value)?);
            }
        }
        config.key_value_stores = labelled_sections(&mut table, "key_value_store", |section| {
            key_value_store(section, base_dir)
        })?;
        config.sqlite_databases =
            labelled_sections(&mut table, "sqlite_database", sqlite_database)?;
        if let Some((key, value)) = table.into_iter().next() {
            return Err(unknown_section(&key, &value));
        }
        Ok(config)
    }
}

/// `max_instance_memory`: a number of bytes, in the range `--max-memory` takes.
fn max_instance_memory(value: toml::Value) -> anyhow::Result<usize> {
    let bytes = value
        .as_integer()
        .and_then(|bytes| usize::try_from(bytes).ok())
        .with_context(|| {
            format!("max_instance_memory: expected a number of bytes, found {value}")
        })?;
    crate::limits::parse_memory_bytes(&bytes.to_string())
        .map_err(|message| anyhow::anyhow!("max_instance_memory: {message}"))?;
    Ok(bytes)
}

/// `[[variables_provider]]` (or Spin's older `[[config_provider]]`) tables, each read.
fn variable_providers(key: &str, value: toml::Value) -> anyhow::Result<Vec<VariableProvider>> {
    let toml::Value::Array(providers) = value else {
        bail!("{key}: expected an array of tables, `[[{key}]]`");
    };
    providers
        .into_iter()
        .enumerate()
        .map(|(index, provider)| {
            variable_provider(provider).with_context(|| format!("[[{key}]] #{}", index + 1))
        })
        .collect()
}

/// Why a key the runtime config may not have stops the host: a section for a host API this host
/// does not provide yet, or a key Spin does not know either.
fn unknown_section(key: &str, value: &toml::Value) -> anyhow::Error {
    let shown = match value {
        toml::Value::Table(_) => format!("[{key}]"),
        toml::Value::Array(_) => format!("[[{key}]]"),
        _ => format!("`{key}`"),
    };
    match NOT_PROVIDED.iter().find(|(name, _)| *name == key) {
        Some((_, what)) => anyhow::anyhow!(
            "{shown}: this host does not provide {what} yet; remove the section to run here"
        ),
        None => anyhow::anyhow!(
            "{shown}: unknown key; Spin's runtime config has state_dir, log_dir, \
             max_instance_memory, [[variables_provider]], [key_value_store.<label>], \
             [sqlite_database.<label>], and sections for the host APIs ({})",
            NOT_PROVIDED
                .iter()
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
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
            "[llm_compute]\ntype = \"remote_http\"\nurl = \"http://127.0.0.1\"\n",
        )
        .unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            "[llm_compute]: this host does not provide AI models yet; remove the section to run here"
        );
        let error = RuntimeConfig::parse("[[variables_provider]]\ntype = \"vault\"\n").unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            "[[variables_provider]] #1: `type = \"vault\"`: this host does not read variables from Vault yet"
        );
    }

    #[test]
    fn store_and_database_sections_are_read_by_label() {
        let config = RuntimeConfig::parse_in(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"rediss://u:p@cache:6380\"\n\
             [key_value_store.local]\ntype = \"spin\"\npath = \"data/local.db\"\n\
             [key_value_store.scratch]\ntype = \"spin\"\n\
             [sqlite_database.reports]\ntype = \"spin\"\npath = \"/var/reports.db\"\n",
            Path::new("/etc/app"),
        )
        .unwrap();
        assert_eq!(
            config.key_value_stores,
            BTreeMap::from([
                (
                    "default".to_owned(),
                    KeyValueStoreConfig::Redis {
                        url: "rediss://u:p@cache:6380".to_owned()
                    }
                ),
                (
                    "local".to_owned(),
                    KeyValueStoreConfig::Spin {
                        path: Some("/etc/app/data/local.db".into())
                    }
                ),
                (
                    "scratch".to_owned(),
                    KeyValueStoreConfig::Spin { path: None }
                ),
            ])
        );
        assert_eq!(
            config.sqlite_databases,
            BTreeMap::from([(
                "reports".to_owned(),
                SqliteDatabaseConfig {
                    path: Some("/var/reports.db".into())
                }
            )])
        );
        for (text, message) in [
            (
                "[key_value_store.x]\ntype = \"azure_cosmos\"\n",
                "[key_value_store.x]: `type = \"azure_cosmos\"`: this host does not provide this store type",
            ),
            (
                "[key_value_store.x]\ntype = \"redis\"\nurl = \"redis://h\"\npath = \"p\"\n",
                "[key_value_store.x]: unknown field `path`",
            ),
            (
                "[sqlite_database.x]\ntype = \"libsql\"\nurl = \"u\"\ntoken = \"t\"\n",
                "[sqlite_database.x]: `type = \"libsql\"`: this host does not connect to libSQL servers",
            ),
            ("key_value_store = 1\n", "key_value_store: expected tables"),
        ] {
            let error = format!("{:#}", RuntimeConfig::parse(text).unwrap_err());
            assert!(error.starts_with(message), "{error}");
        }
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
