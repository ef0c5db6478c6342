//! SQLite databases components open by label (`sqlite_databases`), and the SQLite files under
//! key-value stores: opened in WAL mode with a busy timeout, so many instances (and other
//! processes) can use one file at once, and a write that returned survives the process. A
//! guest's connections are confined to their database ([`confine`]), and each statement ends at
//! the handler's deadline with a result no larger than the instance's memory.

mod confine;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rusqlite::Connection;
use rusqlite::limits::Limit;

use crate::call_trace::OutboundSpan;
use crate::limits::HostCallLimits;
use crate::live::lock;
use confine::Guard;

/// How long a statement waits for another connection's write lock before failing with "database
/// is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle connections a database keeps for the next instance.
const MAX_IDLE_CONNECTIONS: usize = 8;

/// SQLite's own ceiling on one string or blob (`SQLITE_MAX_LENGTH`); a call's byte limit is
/// lowered to it.
const SQLITE_MAX_LENGTH: usize = 1_000_000_000;

/// What a value costs in a result besides its bytes: the canonical ABI's variant and list
/// headers, so that many empty values count too.
const VALUE_OVERHEAD: usize = 16;

/// Opens the SQLite file at `path` as every connection here is opened: WAL journal (readers
/// never block the writer), `synchronous = NORMAL` (a committed write is in the WAL file when the
/// call returns, so it survives the process being killed; only a power loss can cost the last
/// commits, never the file), and a busy timeout.
pub fn open_file(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    let _mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(connection)
}

/// Runs blocking SQLite work off the async scheduler's hot path. On a multi-threaded runtime
/// (the host's) it runs in place with `block_in_place`: the worker hands its other tasks to
/// another thread and the work needs no thread hop, several times cheaper than a round trip
/// to the blocking pool (see the benchmark's key-value row). On a current-thread runtime (an
/// embedder's), where that is not allowed, it goes to the blocking pool.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    if on_multi_threaded_runtime() {
        Ok(tokio::task::block_in_place(work))
    } else {
        tokio::task::spawn_blocking(work).await
    }
}

/// Runs blocking SQLite work for a synchronous host call: in place with `block_in_place` on a
/// multi-threaded runtime, else simply on this thread.
fn in_place<T>(work: impl FnOnce() -> T) -> T {
    if on_multi_threaded_runtime() {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

fn on_multi_threaded_runtime() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// Creates the directory `path` goes in, when missing.
pub fn create_parent(path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating the directory {}", parent.display()))?;
    }
    Ok(())
}

/// Why a SQLite call failed, before it is put in an interface version's `error`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SqliteError {
    /// The component may not open this database (not in its `sqlite_databases`).
    #[error("access denied: the database is not in the component's sqlite_databases")]
    AccessDenied,
    /// The connection was closed, or lost in a call that was cancelled.
    #[error("invalid connection")]
    InvalidConnection,
    /// SQLite's own error, or the host's.
    #[error("{0}")]
    Io(String),
}

impl From<rusqlite::Error> for SqliteError {
    fn from(error: rusqlite::Error) -> Self {
        SqliteError::Io(error.to_string())
    }
}

/// A value in a statement's parameters or a result row.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    Null,
}

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            SqlValue::Integer(value) => ValueRef::Integer(*value),
            SqlValue::Real(value) => ValueRef::Real(*value),
            SqlValue::Text(value) => ValueRef::Text(value.as_bytes()),
            SqlValue::Blob(value) => ValueRef::Blob(value),
            SqlValue::Null => ValueRef::Null,
        }))
    }
}

impl SqlValue {
    /// The bytes the value holds beyond its fixed size.
    fn size(&self) -> usize {
        match self {
            SqlValue::Text(text) => text.len(),
            SqlValue::Blob(bytes) => bytes.len(),
            SqlValue::Integer(_) | SqlValue::Real(_) | SqlValue::Null => 0,
        }
    }
}

impl From<rusqlite::types::ValueRef<'_>> for SqlValue {
    fn from(value: rusqlite::types::ValueRef<'_>) -> Self {
        use rusqlite::types::ValueRef;
        match value {
            ValueRef::Integer(value) => SqlValue::Integer(value),
            ValueRef::Real(value) => SqlValue::Real(value),
            ValueRef::Text(text) => SqlValue::Text(String::from_utf8_lossy(text).into_owned()),
            ValueRef::Blob(bytes) => SqlValue::Blob(bytes.to_vec()),
            ValueRef::Null => SqlValue::Null,
        }
    }
}

/// A connection confined for a guest, with its guard.
struct GuestConnection {
    connection: Connection,
    guard: Arc<Guard>,
}

impl GuestConnection {
    fn open(path: &Path) -> rusqlite::Result<Self> {
        let mut connection = open_file(path)?;
        let guard = confine::confine(&mut connection)?;
        Ok(GuestConnection { connection, guard })
    }

    /// Runs one guest statement under `limits`: SQLite waits for a lock and runs at most until
    /// the deadline, and no value may be larger than the call's byte limit.
    fn run(
        &self,
        statement: &str,
        parameters: &[SqlValue],
        limits: &HostCallLimits,
    ) -> Result<Statement, SqliteError> {
        let remaining = limits.remaining();
        if remaining.is_zero() {
            return Err(deadline_passed());
        }
        self.guard.set_deadline(limits.deadline);
        self.connection.busy_timeout(remaining.min(BUSY_TIMEOUT))?;
        let longest = limits.max_bytes.min(SQLITE_MAX_LENGTH);
        self.connection.set_limit(
            Limit::SQLITE_LIMIT_LENGTH,
            i32::try_from(longest).unwrap_or(i32::MAX),
        )?;
        run_statement(&self.connection, statement, parameters, limits).map_err(|error| {
            if self.guard.deadline_passed() {
                deadline_passed()
            } else if let Some(refusal) = self.guard.refusal() {
                SqliteError::Io(format!("not authorized: {refusal}"))
            } else {
                error
            }
        })
    }
}

fn deadline_passed() -> SqliteError {
    SqliteError::Io(
        "the statement was interrupted at the handler's deadline (handler_timeout)".into(),
    )
}

/// A statement's span, a child of the handler's when a handler runs it (see
/// `call_trace::OutboundSpan`); never the statement's text, which may hold data.
fn execute_span() -> OutboundSpan {
    OutboundSpan::start(|| {
        (
            "sqlite execute",
            vec![
                opentelemetry::KeyValue::new("db.system.name", "sqlite"),
                opentelemetry::KeyValue::new("db.operation.name", "execute"),
            ],
        )
    })
}

/// What a statement returned: its columns' names and every row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SqlValue>>,
}

/// One database: a file, with the connections instances are not using kept open.
pub struct SqliteDatabase {
    path: PathBuf,
    idle: Mutex<Vec<GuestConnection>>,
}

impl SqliteDatabase {
    /// Opens (creating it and its directory when missing) the database at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        create_parent(path)?;
        let connection = GuestConnection::open(path)
            .with_context(|| format!("opening the SQLite database {}", path.display()))?;
        Ok(SqliteDatabase {
            path: path.to_owned(),
            idle: Mutex::new(vec![connection]),
        })
    }

    /// A connection of the caller's own until it is dropped: an idle one, else a new one
    /// (opened on a blocking thread).
    pub async fn connect(self: &Arc<Self>) -> Result<DatabaseConnection, SqliteError> {
        let idle = lock(&self.idle).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => {
                let path = self.path.clone();
                blocking(move || GuestConnection::open(&path))
                    .await
                    .map_err(|error| SqliteError::Io(error.to_string()))??
            }
        };
        Ok(self.handle(connection))
    }

    /// [`connect`](Self::connect) on the calling thread, for the synchronous `open`.
    pub fn connect_blocking(self: &Arc<Self>) -> Result<DatabaseConnection, SqliteError> {
        let idle = lock(&self.idle).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => in_place(|| GuestConnection::open(&self.path))?,
        };
        Ok(self.handle(connection))
    }

    fn handle(self: &Arc<Self>, connection: GuestConnection) -> DatabaseConnection {
        DatabaseConnection(Arc::new(Shared {
            database: self.clone(),
            connection: tokio::sync::Mutex::new(Some(connection)),
            last_insert_rowid: AtomicI64::new(0),
            changes: AtomicU64::new(0),
        }))
    }

    /// Runs `statements` (one or more, `;`-separated) on a connection of its own, not
    /// confined and not pooled: `--sqlite`, the operator's own statements.
    pub async fn execute_batch(self: &Arc<Self>, statements: String) -> anyhow::Result<()> {
        let path = self.path.clone();
        blocking(move || open_file(&path)?.execute_batch(&statements))
            .await?
            .with_context(|| format!("database {}", self.path.display()))
    }
}

/// A connection a guest opened: its own SQLite connection until the guest drops it, so a
/// transaction it begins is its alone. Its `last-insert-rowid` and `changes` are the guest's own
/// statements', not those of an earlier user of the pooled connection. A cheap handle: clones
/// share the connection.
#[derive(Clone)]
pub struct DatabaseConnection(Arc<Shared>);

struct Shared {
    database: Arc<SqliteDatabase>,
    /// `None` once lost (a call cancelled while its statement ran).
    connection: tokio::sync::Mutex<Option<GuestConnection>>,
    last_insert_rowid: AtomicI64,
    changes: AtomicU64,
}

impl DatabaseConnection {
    /// Runs `work` on the connection on a blocking thread, one call at a time.
    async fn with_connection<T: Send + 'static>(
        &self,
        work: impl FnOnce(&GuestConnection) -> Result<T, SqliteError> + Send + 'static,
    ) -> Result<T, SqliteError> {
        let mut slot = self.0.connection.lock().await;
        let connection = slot.take().ok_or(SqliteError::InvalidConnection)?;
        let (connection, outcome) = blocking(move || {
            let outcome = work(&connection);
            (connection, outcome)
        })
        .await
        .map_err(|error| SqliteError::Io(error.to_string()))?;
        *slot = Some(connection);
        outcome
    }

    /// Runs one statement with `parameters` (`?`, `?NNN`, `:name` numbered as SQLite numbers
    /// them) under `limits` and returns every row it yields.
    pub async fn execute(
        &self,
        statement: String,
        parameters: Vec<SqlValue>,
        limits: HostCallLimits,
    ) -> Result<QueryResult, SqliteError> {
        let span = execute_span();
        let result = self
            .with_connection(move |connection| connection.run(&statement, &parameters, &limits))
            .await
            .map(|(result, wrote)| {
                self.record(wrote);
                result
            });
        span.finish(result)
    }

    /// [`execute`](Self::execute) on the calling thread, for the interfaces' synchronous
    /// `execute`; fails rather than wait when another call holds the connection.
    pub fn execute_blocking(
        &self,
        statement: &str,
        parameters: &[SqlValue],
        limits: &HostCallLimits,
    ) -> Result<QueryResult, SqliteError> {
        let span = execute_span();
        let result = (|| {
            let slot =
                self.0.connection.try_lock().map_err(|_| {
                    SqliteError::Io("the connection is busy with another call".into())
                })?;
            let connection = slot.as_ref().ok_or(SqliteError::InvalidConnection)?;
            let (result, wrote) = in_place(|| connection.run(statement, parameters, limits))?;
            self.record(wrote);
            Ok(result)
        })();
        span.finish(result)
    }

    fn record(&self, wrote: Option<(i64, u64)>) {
        if let Some((last_insert_rowid, changes)) = wrote {
            if last_insert_rowid != 0 {
                self.0
                    .last_insert_rowid
                    .store(last_insert_rowid, Ordering::Relaxed);
            }
            self.0.changes.store(changes, Ordering::Relaxed);
        }
    }

    /// The rowid of this connection's most recent successful INSERT; 0 before one.
    pub fn last_insert_rowid(&self) -> i64 {
        self.0.last_insert_rowid.load(Ordering::Relaxed)
    }

    /// Rows changed by this connection's most recent INSERT, UPDATE or DELETE.
    pub fn changes(&self) -> u64 {
        self.0.changes.load(Ordering::Relaxed)
    }
}

/// What a statement returned, and for an INSERT, UPDATE or DELETE the connection's last-insert
/// rowid and changes after it.
type Statement = (QueryResult, Option<(i64, u64)>);

/// Runs one statement, gathering at most `limits.max_bytes` of result.
fn run_statement(
    connection: &Connection,
    statement: &str,
    parameters: &[SqlValue],
    limits: &HostCallLimits,
) -> Result<Statement, SqliteError> {
    let rowid_before = connection.last_insert_rowid();
    let mut prepared = connection.prepare(statement)?;
    let columns: Vec<String> = prepared.column_names().map(str::to_owned).collect();
    let mut rows = prepared.query(rusqlite::params_from_iter(parameters))?;
    let mut result = QueryResult {
        columns,
        rows: Vec::new(),
    };
    let mut bytes: usize = result
        .columns
        .iter()
        .map(|name| name.len() + VALUE_OVERHEAD)
        .sum();
    while let Some(row) = rows.next()? {
        let values = (0..result.columns.len())
            .map(|index| row.get_ref(index).map(SqlValue::from))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        bytes = values.iter().fold(bytes, |total, value| {
            total.saturating_add(value.size() + VALUE_OVERHEAD)
        });
        limits
            .check_bytes(bytes, "the statement's result")
            .map_err(SqliteError::Io)?;
        result.rows.push(values);
    }
    drop(rows);
    let writes_rows = !prepared.readonly() && is_data_change(statement);
    let wrote = writes_rows.then(|| {
        let rowid = connection.last_insert_rowid();
        let inserted =
            rowid != rowid_before || starts_with_keyword(statement, &["INSERT", "REPLACE"]);
        (if inserted { rowid } else { 0 }, connection.changes())
    });
    Ok((result, wrote))
}

/// Whether a statement is an INSERT, UPDATE, DELETE or REPLACE (possibly after a `WITH`), the
/// statements SQLite counts `changes` for.
fn is_data_change(statement: &str) -> bool {
    starts_with_keyword(
        statement,
        &["INSERT", "UPDATE", "DELETE", "REPLACE", "WITH"],
    )
}

fn starts_with_keyword(statement: &str, keywords: &[&str]) -> bool {
    let first = statement
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default();
    keywords
        .iter()
        .any(|keyword| first.eq_ignore_ascii_case(keyword))
}

impl Drop for Shared {
    fn drop(&mut self) {
        // A connection left inside a transaction is closed (which rolls it back), not reused;
        // so is one holding something of this instance's (a TEMP table, a PRAGMA it set).
        let connection = self.connection.get_mut().take();
        if let Some(connection) =
            connection.filter(|guest| guest.connection.is_autocommit() && guest.guard.reusable())
        {
            let mut idle = lock(&self.database.idle);
            if idle.len() < MAX_IDLE_CONNECTIONS {
                idle.push(connection);
            }
        }
    }
}

#[cfg(test)]
mod tests;
