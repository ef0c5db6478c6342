//! Key-value stores components open by label (`key_value_stores`): a SQLite file laid out as
//! Spin lays it out (table `spin_key_value`, one row per store label and key), or a Redis
//! database (plain keys, as Spin's Redis store writes them), so a store Spin wrote reads the same
//! here. One implementation under every interface version.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use opentelemetry::KeyValue;
use redis::AsyncCommands;
use rusqlite::{Connection, OptionalExtension};
use tokio::sync::OnceCell;

use crate::allowed_hosts::redact;
use crate::call_trace::OutboundSpan;
use crate::live::lock;
use crate::redis_client::RedisTls;
use crate::stores::sqlite_database::{blocking, create_parent, open_file};

/// Why a key-value call failed, before it is put in an interface version's `error`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KeyValueError {
    /// The component may not open this store (not in its `key_value_stores`).
    #[error("access denied: the store is not in the component's key_value_stores")]
    AccessDenied,
    /// The instance holds as many open stores as it may.
    #[error("too many stores open in this instance")]
    StoreTableFull,
    /// The backend's error.
    #[error("{0}")]
    Other(String),
}

/// Keys `get_many` reads in one statement or `MGET`.
const GET_MANY_PAGE: usize = 16;

fn other(error: impl std::fmt::Display) -> KeyValueError {
    KeyValueError::Other(error.to_string())
}

/// A store: where one label's keys live.
pub enum KeyValueStore {
    Sqlite(SqliteStore),
    /// Boxed: a Redis client is much larger than a SQLite handle.
    Redis(Box<RedisStore>),
}

/// A store's keys in a SQLite file, in Spin's table.
pub struct SqliteStore {
    /// The label: several stores may share one file, each its own keys.
    name: String,
    path: PathBuf,
    connection: Arc<Mutex<Connection>>,
}

/// A store in a Redis database.
pub struct RedisStore {
    client: redis::Client,
    /// The URL with any password hidden, for messages.
    shown: String,
    /// Made on first use; reconnects by itself when the server goes away and comes back.
    connection: OnceCell<redis::aio::ConnectionManager>,
}

/// Swaps `KEYS[1]` to `ARGV[2]` only when it still holds what the caller read: `ARGV[1]` is `"1"`
/// and the value `ARGV[3]`, or `"0"` and no value. Atomic in Redis.
const COMPARE_AND_SWAP: &str = r"
local current = redis.call('GET', KEYS[1])
local matches
if ARGV[1] == '1' then matches = (current == ARGV[3]) else matches = (current == false) end
if matches then redis.call('SET', KEYS[1], ARGV[2]) return 1 end
return 0
";

impl KeyValueStore {
    /// The store `name` in the SQLite file at `path` (created, with its directory, if missing).
    pub fn sqlite(name: &str, path: &Path) -> anyhow::Result<Self> {
        create_parent(path)?;
        let connection = open_file(path)
            .and_then(|connection| {
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS spin_key_value (
                        store TEXT NOT NULL,
                        key   TEXT NOT NULL,
                        value BLOB NOT NULL,
                        PRIMARY KEY (store, key)
                    )",
                    [],
                )?;
                Ok(connection)
            })
            .with_context(|| format!("opening the key-value store file {}", path.display()))?;
        Ok(KeyValueStore::Sqlite(SqliteStore {
            name: name.to_owned(),
            path: path.to_owned(),
            connection: Arc::new(Mutex::new(connection)),
        }))
    }

    /// The Redis database at `url`; connected on first use. TLS and credentials follow the
    /// host's other Redis clients (`rediss://`, `--tls-ca-file`, user and password in the URL).
    pub fn redis(url: &str, tls: &RedisTls) -> anyhow::Result<Self> {
        let client = tls
            .client(url)
            .with_context(|| format!("the Redis URL {}", redact(url)))?;
        Ok(KeyValueStore::Redis(Box::new(RedisStore {
            client,
            shown: redact(url),
            connection: OnceCell::new(),
        })))
    }

    /// Where the store's data is, for logs.
    pub fn location(&self) -> String {
        match self {
            KeyValueStore::Sqlite(store) => store.path.display().to_string(),
            KeyValueStore::Redis(store) => store.shown.clone(),
        }
    }

    async fn get_untraced(&self, key: String) -> Result<Option<Vec<u8>>, KeyValueError> {
        match self {
            KeyValueStore::Sqlite(store) => {
                store
                    .run(move |connection, name| read_value(connection, name, &key))
                    .await
            }
            KeyValueStore::Redis(store) => store.connection().await?.get(key).await.map_err(other),
        }
    }

    pub async fn get(&self, key: String) -> Result<Option<Vec<u8>>, KeyValueError> {
        self.traced("get", self.get_untraced(key)).await
    }

    pub async fn set(&self, key: String, value: Vec<u8>) -> Result<(), KeyValueError> {
        self.traced("set", self.set_many_untraced(vec![(key, value)]))
            .await
    }

    pub async fn delete(&self, key: String) -> Result<(), KeyValueError> {
        self.traced("delete", self.delete_many_untraced(vec![key]))
            .await
    }

    pub async fn exists(&self, key: String) -> Result<bool, KeyValueError> {
        self.traced("exists", self.exists_untraced(key)).await
    }

    /// Every key in the store.
    pub async fn get_keys(&self) -> Result<Vec<String>, KeyValueError> {
        self.traced("get_keys", self.get_keys_untraced()).await
    }

    /// The values of `keys` (`None` for a missing one), failing once they pass `max_bytes`.
    pub async fn get_many(
        &self,
        keys: Vec<String>,
        max_bytes: usize,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, KeyValueError> {
        self.traced("get_many", self.get_many_untraced(keys, max_bytes))
            .await
    }

    pub async fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), KeyValueError> {
        self.traced("set_many", self.set_many_untraced(pairs)).await
    }

    pub async fn delete_many(&self, keys: Vec<String>) -> Result<(), KeyValueError> {
        self.traced("delete_many", self.delete_many_untraced(keys))
            .await
    }

    pub async fn increment(&self, key: String, delta: i64) -> Result<i64, KeyValueError> {
        self.traced("increment", self.increment_untraced(key, delta))
            .await
    }

    /// Swaps `key` to `value` only if it still holds `expected`; whether it did.
    pub async fn compare_and_swap(
        &self,
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<bool, KeyValueError> {
        self.traced(
            "compare_and_swap",
            self.compare_and_swap_untraced(key, expected, value),
        )
        .await
    }

    /// `operation` as a span, a child of the handler's when a handler makes it (see
    /// `call_trace::OutboundSpan`), named `key-value <operation>`.
    async fn traced<T>(
        &self,
        operation: &'static str,
        call: impl std::future::Future<Output = Result<T, KeyValueError>>,
    ) -> Result<T, KeyValueError> {
        let system = match self {
            KeyValueStore::Sqlite(_) => "sqlite",
            KeyValueStore::Redis(_) => "redis",
        };
        let span = OutboundSpan::start(|| {
            (
                format!("key-value {operation}"),
                vec![
                    KeyValue::new("db.system.name", system),
                    KeyValue::new("db.operation.name", operation),
                ],
            )
        });
        span.finish(call.await)
    }

    async fn exists_untraced(&self, key: String) -> Result<bool, KeyValueError> {
        match self {
            KeyValueStore::Sqlite(store) => {
                store
                    .run(move |connection, name| {
                        connection
                            .prepare_cached(
                                "SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2",
                            )?
                            .exists((name, &key))
                    })
                    .await
            }
            KeyValueStore::Redis(store) => {
                store.connection().await?.exists(key).await.map_err(other)
            }
        }
    }

    /// Every key in the store.
    async fn get_keys_untraced(&self) -> Result<Vec<String>, KeyValueError> {
        match self {
            KeyValueStore::Sqlite(store) => {
                store
                    .run(move |connection, name| {
                        connection
                            .prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?
                            .query_map([name], |row| row.get(0))?
                            .collect()
                    })
                    .await
            }
            KeyValueStore::Redis(store) => {
                let mut connection = store.connection().await?;
                let mut keys = Vec::new();
                let mut iter: redis::AsyncIter<'_, String> =
                    connection.scan().await.map_err(other)?;
                while let Some(key) = futures_util::StreamExt::next(&mut iter).await {
                    keys.push(key.map_err(other)?);
                }
                Ok(keys)
            }
        }
    }

    /// The values of `keys`, each with its key (`None` where it has none), in their order. A key listed more than once is read once, and
    /// the values together may hold at most `max_bytes` (the caller's instance could take no
    /// more): past that, the call fails without reading further.
    async fn get_many_untraced(
        &self,
        keys: Vec<String>,
        max_bytes: usize,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, KeyValueError> {
        let mut distinct: Vec<String> = keys.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let mut values: std::collections::HashMap<String, Option<Vec<u8>>> =
            std::collections::HashMap::with_capacity(distinct.len());
        let size_of = |key: &String, values: &std::collections::HashMap<_, Option<Vec<u8>>>| {
            values.get(key).and_then(Option::as_ref).map_or(0, Vec::len) + key.len()
        };
        // Read a page of keys at a time, so a call asking for too much stops early.
        let mut total = 0usize;
        for page in distinct.chunks(GET_MANY_PAGE) {
            let page: Vec<String> = page.to_vec();
            let read: Vec<Option<Vec<u8>>> = match self {
                KeyValueStore::Sqlite(store) => {
                    let page = page.clone();
                    store
                        .run(move |connection, name| {
                            page.iter()
                                .map(|key| read_value(connection, name, key))
                                .collect()
                        })
                        .await?
                }
                KeyValueStore::Redis(store) => redis::cmd("MGET")
                    .arg(&page)
                    .query_async(&mut store.connection().await?)
                    .await
                    .map_err(other)?,
            };
            values.extend(page.into_iter().zip(read));
            // Every listing counts: the result holds a copy per listing.
            total = keys.iter().fold(0usize, |total, key| {
                total.saturating_add(size_of(key, &values))
            });
            if total > max_bytes {
                break;
            }
        }
        if total > max_bytes {
            return Err(KeyValueError::Other(format!(
                "the values asked for are larger than the instance's max_memory ({max_bytes} \
                 bytes) and could never reach it: ask for fewer keys at a time"
            )));
        }
        Ok(keys
            .into_iter()
            .map(|key| {
                let value = values.get(&key).cloned().flatten();
                (key, value)
            })
            .collect())
    }

    /// Sets every pair, in one transaction.
    async fn set_many_untraced(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), KeyValueError> {
        if pairs.is_empty() {
            return Ok(());
        }
        match self {
            KeyValueStore::Sqlite(store) => {
                store
                    .write(move |transaction, name| {
                        for (key, value) in pairs {
                            write_value(transaction, name, &key, &value)?;
                        }
                        Ok(())
                    })
                    .await
            }
            KeyValueStore::Redis(store) => store
                .connection()
                .await?
                .mset::<_, _, ()>(&pairs)
                .await
                .map_err(other),
        }
    }

    /// Deletes every key; one that is not there is no error.
    async fn delete_many_untraced(&self, keys: Vec<String>) -> Result<(), KeyValueError> {
        if keys.is_empty() {
            return Ok(());
        }
        match self {
            KeyValueStore::Sqlite(store) => {
                store
                    .write(move |transaction, name| {
                        let mut statement = transaction.prepare_cached(
                            "DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2",
                        )?;
                        for key in keys {
                            statement.execute((name, key))?;
                        }
                        Ok(())
                    })
                    .await
            }
            KeyValueStore::Redis(store) => store
                .connection()
                .await?
                .del::<_, ()>(keys)
                .await
                .map_err(other),
        }
    }

    /// Adds `delta` to the number at `key` (0 when unset) and returns the result, atomically.
    /// Stored as Spin stores it: 8 little-endian bytes in a SQLite store, decimal text in Redis.
    async fn increment_untraced(&self, key: String, delta: i64) -> Result<i64, KeyValueError> {
        match self {
            KeyValueStore::Sqlite(store) => {
                let outcome = store
                    .write(move |transaction, name| {
                        let current = read_value(transaction, name, &key)?;
                        let current = match current {
                            None => 0,
                            Some(bytes) => match <[u8; 8]>::try_from(bytes.as_slice()) {
                                Ok(bytes) => i64::from_le_bytes(bytes),
                                Err(_) => return Ok(Err(format!(
                                    "the value at `{key}` is not a number written by increment ({} bytes, not 8)",
                                    bytes.len()
                                ))),
                            },
                        };
                        let Some(next) = current.checked_add(delta) else {
                            return Ok(Err(format!("incrementing `{key}` by {delta} overflows")));
                        };
                        write_value(transaction, name, &key, &next.to_le_bytes())?;
                        Ok(Ok(next))
                    })
                    .await?;
                outcome.map_err(KeyValueError::Other)
            }
            KeyValueStore::Redis(store) => store
                .connection()
                .await?
                .incr(key, delta)
                .await
                .map_err(other),
        }
    }

    /// Sets `key` to `value` only if it still holds `expected` (`None`: still unset). Returns
    /// whether it did.
    async fn compare_and_swap_untraced(
        &self,
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<bool, KeyValueError> {
        match self {
            KeyValueStore::Sqlite(store) => {
                store
                    .write(move |transaction, name| {
                        let current = read_value(transaction, name, &key)?;
                        if current != expected {
                            return Ok(false);
                        }
                        write_value(transaction, name, &key, &value)?;
                        Ok(true)
                    })
                    .await
            }
            KeyValueStore::Redis(store) => {
                let script = redis::Script::new(COMPARE_AND_SWAP);
                let mut invocation = script.key(key);
                invocation
                    .arg(if expected.is_some() { "1" } else { "0" })
                    .arg(value)
                    .arg(expected.unwrap_or_default());
                let swapped: i64 = invocation
                    .invoke_async(&mut store.connection().await?)
                    .await
                    .map_err(other)?;
                Ok(swapped == 1)
            }
        }
    }
}

/// The value of `key` in store `name`, from Spin's table.
fn read_value(connection: &Connection, name: &str, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    connection
        .prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
        .query_row((name, key), |row| row.get(0))
        .optional()
}

/// Sets `key` in store `name` to `value`, in Spin's table.
fn write_value(
    connection: &Connection,
    name: &str,
    key: &str,
    value: &[u8],
) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT(store, key) DO UPDATE SET value = excluded.value",
        )?
        .execute((name, key, value))?;
    Ok(())
}

impl SqliteStore {
    /// Runs `work` on the store's connection on a blocking thread.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection, &str) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, KeyValueError> {
        let (connection, name) = (self.connection.clone(), self.name.clone());
        blocking(move || work(&lock(&connection), &name))
            .await
            .map_err(other)?
            .map_err(other)
    }

    /// Runs `work` in a write transaction, begun `IMMEDIATE` so that another process writing the
    /// same file makes this one wait (up to the busy timeout) rather than fail midway.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&rusqlite::Transaction<'_>, &str) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, KeyValueError> {
        let (connection, name) = (self.connection.clone(), self.name.clone());
        blocking(move || {
            let mut connection = lock(&connection);
            let transaction =
                connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let outcome = work(&transaction, &name)?;
            transaction.commit()?;
            Ok(outcome)
        })
        .await
        .map_err(other)?
        .map_err(|error: rusqlite::Error| other(error))
    }
}

impl RedisStore {
    /// The store's connection, made on first use and shared by every instance after.
    async fn connection(&self) -> Result<redis::aio::ConnectionManager, KeyValueError> {
        self.connection
            .get_or_try_init(|| {
                redis::aio::ConnectionManager::new_with_config(
                    self.client.clone(),
                    crate::redis_client::guest_call_manager_config(),
                )
            })
            .await
            .cloned()
            .map_err(|error| {
                KeyValueError::Other(format!(
                    "connecting to the key-value store at {}: {error}",
                    self.shown
                ))
            })
    }
}

#[cfg(test)]
mod tests;
