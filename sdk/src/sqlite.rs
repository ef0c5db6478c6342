//! SQLite databases: SQL over a real SQLite, kept between events and between runs.
//!
//! A component may open the databases its `sqlite_databases` lists in spin.toml; `default`
//! exists without configuration (a file in the app's `.spin/` directory). Built on
//! `fermyon:spin/sqlite@2.0.0`, so the component runs on Spin too. The names are spin-sdk's where
//! they mean the same.
//!
//! ```no_run
//! use spin_trigger_sdk::sqlite::{Connection, Value};
//!
//! let db = Connection::open_default()?;
//! db.execute("INSERT INTO seen (id, at) VALUES (?, ?)", &[Value::from("order-17"), Value::from(1_700_000_000)])?;
//! let result = db.execute("SELECT id, at FROM seen WHERE at > ?", &[Value::Integer(0)])?;
//! for row in result.rows() {
//!     let id: &str = row.get("id").unwrap_or_default();
//!     let at: i64 = row.get("at").unwrap_or_default();
//!     println!("{id} at {at}");
//! }
//! # Ok::<(), spin_trigger_sdk::sqlite::Error>(())
//! ```

use crate::__private::imports::fermyon::spin2_0_0::sqlite as wit;

pub use wit::{RowResult, Value};

/// Why a database call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The host knows no database with this label.
    NoSuchDatabase,
    /// The component may not open this database: add its label to `sqlite_databases`.
    AccessDenied,
    /// The connection is no longer valid.
    InvalidConnection,
    /// The database is full.
    DatabaseFull,
    /// SQLite's error (a syntax error, a constraint, a locked database) or the host's.
    Io(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NoSuchDatabase => write!(f, "no such SQLite database"),
            Error::AccessDenied => write!(
                f,
                "access denied: the database's label is not in the component's sqlite_databases"
            ),
            Error::InvalidConnection => write!(f, "invalid SQLite connection"),
            Error::DatabaseFull => write!(f, "the SQLite database is full"),
            Error::Io(message) => write!(f, "SQLite error: {message}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<wit::Error> for Error {
    fn from(error: wit::Error) -> Self {
        match error {
            wit::Error::NoSuchDatabase => Error::NoSuchDatabase,
            wit::Error::AccessDenied => Error::AccessDenied,
            wit::Error::InvalidConnection => Error::InvalidConnection,
            wit::Error::DatabaseFull => Error::DatabaseFull,
            wit::Error::Io(message) => Error::Io(message),
        }
    }
}

/// An open connection to a database; closed when dropped. A transaction begun on it
/// (`BEGIN` ... `COMMIT`) is its own.
pub struct Connection(wit::Connection);

impl Connection {
    /// Opens the database labelled `default`.
    pub fn open_default() -> Result<Self, Error> {
        Self::open("default")
    }

    /// Opens the database with this label (one of the component's `sqlite_databases`).
    pub fn open(database: impl AsRef<str>) -> Result<Self, Error> {
        Ok(Connection(wit::Connection::open(database.as_ref())?))
    }

    /// Runs one statement, with `?` (or `?NNN`, `:name`) placeholders bound to `parameters`,
    /// and returns the rows it yields.
    pub fn execute(
        &self,
        statement: impl AsRef<str>,
        parameters: &[Value],
    ) -> Result<QueryResult, Error> {
        let result = self.0.execute(statement.as_ref(), parameters)?;
        Ok(QueryResult {
            columns: result.columns,
            rows: result.rows,
        })
    }
}

/// What a statement returned.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// The columns' names, in order.
    pub columns: Vec<String>,
    /// Every row, each with a value per column.
    pub rows: Vec<RowResult>,
}

impl QueryResult {
    /// The rows, each readable by column name.
    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(|result| Row {
            columns: &self.columns,
            result,
        })
    }
}

/// One row of a [`QueryResult`], read by column name.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    columns: &'a [String],
    result: &'a RowResult,
}

impl<'a> Row<'a> {
    /// The value in `column` as `T`: `None` when there is no such column or the value is not
    /// a `T` (a NULL is `None` too).
    ///
    /// ```no_run
    /// # fn show(row: spin_trigger_sdk::sqlite::Row<'_>) {
    /// let name: Option<&str> = row.get("name");
    /// let score: Option<f64> = row.get("score");
    /// # }
    /// ```
    pub fn get<T: TryFrom<&'a Value>>(&self, column: &str) -> Option<T> {
        let index = self.columns.iter().position(|name| name == column)?;
        self.result.get(index)
    }
}

impl RowResult {
    /// The value at column `index` as `T`; `None` when out of range or not a `T`.
    pub fn get<'a, T: TryFrom<&'a Value>>(&'a self, index: usize) -> Option<T> {
        self.values
            .get(index)
            .and_then(|value| T::try_from(value).ok())
    }
}

macro_rules! integer_conversions {
    ($($int:ty),*) => {$(
        impl TryFrom<&Value> for $int {
            type Error = ();
            fn try_from(value: &Value) -> Result<Self, ()> {
                match value {
                    Value::Integer(value) => <$int>::try_from(*value).map_err(|_| ()),
                    _ => Err(()),
                }
            }
        }
        impl From<$int> for Value {
            fn from(value: $int) -> Self {
                Value::Integer(value as i64)
            }
        }
    )*};
}

integer_conversions!(i8, i16, i32, i64, u8, u16, u32);

impl TryFrom<&Value> for u64 {
    type Error = ();
    fn try_from(value: &Value) -> Result<Self, ()> {
        match value {
            Value::Integer(value) => u64::try_from(*value).map_err(|_| ()),
            _ => Err(()),
        }
    }
}

impl TryFrom<&Value> for bool {
    type Error = ();
    fn try_from(value: &Value) -> Result<Self, ()> {
        match value {
            Value::Integer(value) => Ok(*value != 0),
            _ => Err(()),
        }
    }
}

impl TryFrom<&Value> for f64 {
    type Error = ();
    fn try_from(value: &Value) -> Result<Self, ()> {
        match value {
            Value::Real(value) => Ok(*value),
            Value::Integer(value) => Ok(*value as f64),
            _ => Err(()),
        }
    }
}

impl<'a> TryFrom<&'a Value> for &'a str {
    type Error = ();
    fn try_from(value: &'a Value) -> Result<Self, ()> {
        match value {
            Value::Text(text) => Ok(text),
            _ => Err(()),
        }
    }
}

impl TryFrom<&Value> for String {
    type Error = ();
    fn try_from(value: &Value) -> Result<Self, ()> {
        <&str>::try_from(value).map(str::to_owned)
    }
}

impl<'a> TryFrom<&'a Value> for &'a [u8] {
    type Error = ();
    fn try_from(value: &'a Value) -> Result<Self, ()> {
        match value {
            Value::Blob(bytes) => Ok(bytes),
            _ => Err(()),
        }
    }
}

impl TryFrom<&Value> for Vec<u8> {
    type Error = ();
    fn try_from(value: &Value) -> Result<Self, ()> {
        <&[u8]>::try_from(value).map(<[u8]>::to_vec)
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Value::Integer(value.into())
    }
}

impl From<f64> for Value {
    fn from(value: f64) -> Self {
        Value::Real(value)
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Value::Text(value.to_owned())
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Value::Text(value)
    }
}

impl From<Vec<u8>> for Value {
    fn from(value: Vec<u8>) -> Self {
        Value::Blob(value)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Value::Null, Into::into)
    }
}
