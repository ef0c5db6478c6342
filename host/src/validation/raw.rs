//! An app as written, before validation: the serde shapes of a component, a trigger table and
//! their parts, read leniently where Spin's manifest is (a component as an id or a table, a
//! file as a pattern or a mapping).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

/// A trigger type's table as read, kept as JSON until the type's own serde structs read it
/// (see [`crate::trigger_type`]).
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
