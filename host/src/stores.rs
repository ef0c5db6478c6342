//! The key-value stores and SQLite databases an app's components open by label: which label
//! is where (the runtime config's `[key_value_store.<label>]` and `[sqlite_database.<label>]`,
//! and `default` for each without configuration), opened once per process and shared by every
//! instance.
//!
//! `default` lives in the state directory under the file names Spin uses —
//! `sqlite_key_value.db` for the key-value store, `sqlite_db.db` for the database — so an app's
//! data is where a Spin user expects it. With no state directory (`--state-dir ""`, an app that
//! is not local, an embedder that sets none) they are files in a temporary directory that goes
//! when the process ends, as Spin then keeps them in memory.

pub mod key_value_store;
pub mod sqlite_database;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

use crate::live::lock;
use crate::redis_client::RedisTls;
use crate::runtime_config::{KeyValueStoreConfig, SqliteDatabaseConfig};
use key_value_store::KeyValueStore;
use sqlite_database::SqliteDatabase;

/// The label every app has without configuration.
pub const DEFAULT_LABEL: &str = "default";
/// The default key-value store's file in the state directory, as Spin names it.
pub const DEFAULT_KEY_VALUE_FILE: &str = "sqlite_key_value.db";
/// The default SQLite database's file in the state directory, as Spin names it.
pub const DEFAULT_SQLITE_FILE: &str = "sqlite_db.db";

/// Where an app's stores are, and what to put in them before the first event.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct StateOptions {
    /// The app's state directory (`.spin/` beside `spin.toml`, or `--state-dir`), where the
    /// `default` store and database live; `None`: a temporary directory.
    pub state_dir: Option<PathBuf>,
    /// `[key_value_store.<label>]` sections of the runtime config.
    pub key_value_stores: BTreeMap<String, KeyValueStoreConfig>,
    /// `[sqlite_database.<label>]` sections of the runtime config.
    pub sqlite_databases: BTreeMap<String, SqliteDatabaseConfig>,
    /// `--key-value key=value`: set in the default store before the first event.
    pub key_values: Vec<(String, String)>,
    /// `--sqlite`: statements run against the default database before the first event, in order.
    pub sqlite_statements: Vec<String>,
}

/// Every store and database the app's components use, opened.
pub struct Stores {
    options: StateOptions,
    tls: RedisTls,
    key_value: std::sync::Mutex<BTreeMap<String, Arc<KeyValueStore>>>,
    sqlite: std::sync::Mutex<BTreeMap<String, Arc<SqliteDatabase>>>,
    /// Where the default store and database go without a state directory; removed on drop.
    temporary: std::sync::OnceLock<tempfile::TempDir>,
    seeded: AtomicBool,
}

impl Stores {
    /// Stores configured by `options`; none is opened until a component needs it.
    pub fn new(options: StateOptions, tls: RedisTls) -> Self {
        Stores {
            options,
            tls,
            key_value: Default::default(),
            sqlite: Default::default(),
            temporary: Default::default(),
            seeded: AtomicBool::new(false),
        }
    }

    /// The directory default stores go in.
    fn state_dir(&self) -> anyhow::Result<PathBuf> {
        match &self.options.state_dir {
            Some(dir) => Ok(dir.clone()),
            None => self.temporary_dir(),
        }
    }

    /// The temporary directory, made on first call, for stores that last as long as the process.
    fn temporary_dir(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = self.temporary.get() {
            return Ok(dir.path().to_owned());
        }
        let dir = tempfile::Builder::new()
            .prefix("spin-trigger-state-")
            .tempdir()
            .context("creating a temporary state directory")?;
        Ok(self.temporary.get_or_init(|| dir).path().to_owned())
    }

    /// A file in the temporary directory for a store configured without a `path`.
    fn temporary_file(&self, kind: &str, label: &str) -> anyhow::Result<PathBuf> {
        Ok(self.temporary_dir()?.join(format!("{kind}-{label}.db")))
    }

    /// The key-value store `label`, opened on first call. Fails when nothing provides it.
    pub fn key_value(&self, label: &str) -> anyhow::Result<Arc<KeyValueStore>> {
        let mut opened = lock(&self.key_value);
        if let Some(store) = opened.get(label) {
            return Ok(store.clone());
        }
        let store = match self.options.key_value_stores.get(label) {
            Some(KeyValueStoreConfig::Redis { url }) => KeyValueStore::redis(url, &self.tls)?,
            Some(KeyValueStoreConfig::Spin { path: Some(path) }) => {
                KeyValueStore::sqlite(label, path)?
            }
            Some(KeyValueStoreConfig::Spin { path: None }) => {
                KeyValueStore::sqlite(label, &self.temporary_file("key-value", label)?)?
            }
            None if label == DEFAULT_LABEL => {
                KeyValueStore::sqlite(label, &self.state_dir()?.join(DEFAULT_KEY_VALUE_FILE))?
            }
            None => anyhow::bail!(
                "no key-value store `{label}`: only `{DEFAULT_LABEL}` exists without configuration; \
                 add [key_value_store.{label}] to the runtime config file (--runtime-config-file)"
            ),
        };
        tracing::debug!(label, location = %store.location(), "opened key-value store");
        let store = Arc::new(store);
        opened.insert(label.to_owned(), store.clone());
        Ok(store)
    }

    /// The SQLite database `label`, opened on first call. Fails when nothing provides it.
    pub fn sqlite(&self, label: &str) -> anyhow::Result<Arc<SqliteDatabase>> {
        let mut opened = lock(&self.sqlite);
        if let Some(database) = opened.get(label) {
            return Ok(database.clone());
        }
        let path = match self.options.sqlite_databases.get(label) {
            Some(SqliteDatabaseConfig { path: Some(path) }) => path.clone(),
            Some(SqliteDatabaseConfig { path: None }) => self.temporary_file("sqlite", label)?,
            None if label == DEFAULT_LABEL => self.state_dir()?.join(DEFAULT_SQLITE_FILE),
            None => anyhow::bail!(
                "no SQLite database `{label}`: only `{DEFAULT_LABEL}` exists without configuration; \
                 add [sqlite_database.{label}] to the runtime config file (--runtime-config-file)"
            ),
        };
        let database = Arc::new(SqliteDatabase::open(&path)?);
        tracing::debug!(label, path = %path.display(), "opened SQLite database");
        opened.insert(label.to_owned(), database.clone());
        Ok(database)
    }

    /// Applies `--key-value` and `--sqlite` once, before the first event.
    pub async fn seed(&self) -> anyhow::Result<()> {
        if self.seeded.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        if !self.options.key_values.is_empty() {
            let store = self.key_value(DEFAULT_LABEL).context("--key-value")?;
            let pairs = self
                .options
                .key_values
                .iter()
                .map(|(key, value)| (key.clone(), value.clone().into_bytes()))
                .collect();
            store
                .set_many(pairs)
                .await
                .with_context(|| format!("--key-value: setting keys in {}", store.location()))?;
        }
        if !self.options.sqlite_statements.is_empty() {
            let database = self.sqlite(DEFAULT_LABEL).context("--sqlite")?;
            for statement in &self.options.sqlite_statements {
                database
                    .execute_batch(statement.clone())
                    .await
                    .with_context(|| format!("--sqlite: running `{}`", first_line(statement)))?;
            }
        }
        Ok(())
    }
}

/// What one component may open: the stores and databases it lists, and nothing else.
pub struct StoreAccess {
    /// The stores the component lists, opened, by label.
    key_value: BTreeMap<String, Arc<KeyValueStore>>,
    /// The databases it lists, opened, by label.
    sqlite: BTreeMap<String, Arc<SqliteDatabase>>,
}

impl StoreAccess {
    /// Opens every store and database `component` lists, so one that nothing provides (or that
    /// cannot be opened) stops the host before anything runs, naming the component and label.
    pub fn for_component(
        stores: &Stores,
        component: &crate::component::Component,
    ) -> anyhow::Result<Self> {
        let key_value = component
            .key_value_stores
            .iter()
            .map(|label| {
                let store = stores.key_value(label).with_context(|| {
                    format!(
                        "component `{}` lists key-value store `{label}` in key_value_stores",
                        component.id
                    )
                })?;
                Ok((label.clone(), store))
            })
            .collect::<anyhow::Result<_>>()?;
        let sqlite = component
            .sqlite_databases
            .iter()
            .map(|label| {
                let database = stores.sqlite(label).with_context(|| {
                    format!(
                        "component `{}` lists SQLite database `{label}` in sqlite_databases",
                        component.id
                    )
                })?;
                Ok((label.clone(), database))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(StoreAccess { key_value, sqlite })
    }

    /// The key-value store `label`, when the component lists it.
    pub fn key_value(
        &self,
        label: &str,
    ) -> Result<Arc<KeyValueStore>, key_value_store::KeyValueError> {
        self.key_value
            .get(label)
            .cloned()
            .ok_or(key_value_store::KeyValueError::AccessDenied)
    }

    /// The SQLite database `label`, when the component lists it.
    pub fn sqlite(&self, label: &str) -> Result<Arc<SqliteDatabase>, sqlite_database::SqliteError> {
        self.sqlite
            .get(label)
            .cloned()
            .ok_or(sqlite_database::SqliteError::AccessDenied)
    }
}

/// A statement's first line, for messages.
fn first_line(statement: &str) -> &str {
    statement.trim().lines().next().unwrap_or_default()
}
