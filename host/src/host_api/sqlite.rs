//! SQLite databases for guests: `fermyon:spin/sqlite@2.0.0` and `spin:sqlite/sqlite@3.1.0`
//! (spin-sdk 6 and 7 call its `async func`s). One implementation under both:
//! [`crate::stores::sqlite_database::SqliteDatabase`].
//!
//! A component may open only the labels in its `sqlite_databases`; any other gets
//! `access-denied`, as in Spin. Each open connection is the guest's own SQLite connection.

use wasmtime::component::{Accessor, FutureReader, Resource, StreamReader};

use crate::host_api::bindings::fermyon::spin2_0_0::sqlite as v2;
use crate::host_api::key_value::ready;
use crate::host_api::spin3_bindings::spin::sqlite::sqlite as v3;
use crate::host_api::{InstanceState, Spin3};
use crate::stores::sqlite_database::{DatabaseConnection, QueryResult, SqlValue, SqliteError};

/// Connections one instance may hold open at once.
const MAX_OPEN_CONNECTIONS: usize = 64;

impl InstanceState {
    /// Checks that this instance may open the database `label`, and returns it.
    fn database(
        &self,
        label: &str,
    ) -> Result<std::sync::Arc<crate::stores::sqlite_database::SqliteDatabase>, SqliteError> {
        if self.open_databases >= MAX_OPEN_CONNECTIONS {
            return Err(SqliteError::Io(format!(
                "too many SQLite connections open in this instance ({MAX_OPEN_CONNECTIONS})"
            )));
        }
        self.stores.sqlite(label).inspect_err(|error| {
            if *error == SqliteError::AccessDenied {
                tracing::warn!(
                    component = %self.component_id,
                    label,
                    "SQLite database refused: not in the component's sqlite_databases"
                );
            }
        })
    }

    fn keep_connection(
        &mut self,
        connection: DatabaseConnection,
    ) -> Result<Resource<DatabaseConnection>, SqliteError> {
        let resource = self
            .table
            .push(connection)
            .map_err(|error| SqliteError::Io(error.to_string()))?;
        self.open_databases += 1;
        Ok(resource)
    }

    /// A handle on a guest's connection (cheap to clone), so no borrow of the table is held
    /// across an await.
    fn connection(
        &self,
        resource: &Resource<DatabaseConnection>,
    ) -> Result<DatabaseConnection, SqliteError> {
        self.table
            .get(resource)
            .cloned()
            .map_err(|_| SqliteError::InvalidConnection)
    }

    fn close_connection(&mut self, resource: Resource<DatabaseConnection>) -> wasmtime::Result<()> {
        self.table.delete(resource)?;
        self.open_databases = self.open_databases.saturating_sub(1);
        Ok(())
    }

    async fn open_connection(
        &mut self,
        label: &str,
    ) -> Result<Resource<DatabaseConnection>, SqliteError> {
        let connection = self.database(label)?.connect().await?;
        self.keep_connection(connection)
    }
}

// --- fermyon:spin/sqlite@2.0.0 ---

impl From<SqliteError> for v2::Error {
    fn from(error: SqliteError) -> Self {
        match error {
            SqliteError::AccessDenied => v2::Error::AccessDenied,
            SqliteError::InvalidConnection => v2::Error::InvalidConnection,
            SqliteError::Io(message) => v2::Error::Io(message),
        }
    }
}

impl From<v2::Value> for SqlValue {
    fn from(value: v2::Value) -> Self {
        match value {
            v2::Value::Integer(value) => SqlValue::Integer(value),
            v2::Value::Real(value) => SqlValue::Real(value),
            v2::Value::Text(value) => SqlValue::Text(value),
            v2::Value::Blob(value) => SqlValue::Blob(value),
            v2::Value::Null => SqlValue::Null,
        }
    }
}

impl From<SqlValue> for v2::Value {
    fn from(value: SqlValue) -> Self {
        match value {
            SqlValue::Integer(value) => v2::Value::Integer(value),
            SqlValue::Real(value) => v2::Value::Real(value),
            SqlValue::Text(value) => v2::Value::Text(value),
            SqlValue::Blob(value) => v2::Value::Blob(value),
            SqlValue::Null => v2::Value::Null,
        }
    }
}

impl From<QueryResult> for v2::QueryResult {
    fn from(result: QueryResult) -> Self {
        v2::QueryResult {
            columns: result.columns,
            rows: result
                .rows
                .into_iter()
                .map(|row| v2::RowResult {
                    values: row.into_iter().map(Into::into).collect(),
                })
                .collect(),
        }
    }
}

impl v2::Host for InstanceState {}

impl v2::HostConnection for InstanceState {
    async fn open(&mut self, database: String) -> Result<Resource<DatabaseConnection>, v2::Error> {
        Ok(self.open_connection(&database).await?)
    }

    async fn execute(
        &mut self,
        connection: Resource<DatabaseConnection>,
        statement: String,
        parameters: Vec<v2::Value>,
    ) -> Result<v2::QueryResult, v2::Error> {
        let parameters = parameters.into_iter().map(Into::into).collect();
        let limits = self.host_call_limits;
        let result = self
            .connection(&connection)?
            .execute(statement, parameters, limits)
            .await?;
        Ok(result.into())
    }

    async fn drop(&mut self, connection: Resource<DatabaseConnection>) -> wasmtime::Result<()> {
        self.close_connection(connection)
    }
}

// --- spin:sqlite/sqlite@3.1.0 ---

impl From<SqliteError> for v3::Error {
    fn from(error: SqliteError) -> Self {
        match error {
            SqliteError::AccessDenied => v3::Error::AccessDenied,
            SqliteError::InvalidConnection => v3::Error::InvalidConnection,
            SqliteError::Io(message) => v3::Error::Io(message),
        }
    }
}

impl From<v3::Value> for SqlValue {
    fn from(value: v3::Value) -> Self {
        match value {
            v3::Value::Integer(value) => SqlValue::Integer(value),
            v3::Value::Real(value) => SqlValue::Real(value),
            v3::Value::Text(value) => SqlValue::Text(value),
            v3::Value::Blob(value) => SqlValue::Blob(value),
            v3::Value::Null => SqlValue::Null,
        }
    }
}

impl From<SqlValue> for v3::Value {
    fn from(value: SqlValue) -> Self {
        match value {
            SqlValue::Integer(value) => v3::Value::Integer(value),
            SqlValue::Real(value) => v3::Value::Real(value),
            SqlValue::Text(value) => v3::Value::Text(value),
            SqlValue::Blob(value) => v3::Value::Blob(value),
            SqlValue::Null => v3::Value::Null,
        }
    }
}

fn v3_rows(rows: Vec<Vec<SqlValue>>) -> Vec<v3::RowResult> {
    rows.into_iter()
        .map(|row| v3::RowResult {
            values: row.into_iter().map(Into::into).collect(),
        })
        .collect()
}

impl v3::Host for InstanceState {}

impl v3::HostConnection for InstanceState {
    fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<DatabaseConnection>, v3::Error>> {
        // The synchronous open: an idle connection, else the file opened on this thread.
        let mut open = || {
            let database = self.database(&database)?;
            let connection = database.connect_blocking()?;
            Ok(self.keep_connection(connection)?)
        };
        Ok(open())
    }

    fn execute(
        &mut self,
        connection: Resource<DatabaseConnection>,
        statement: String,
        parameters: Vec<v3::Value>,
    ) -> wasmtime::Result<Result<v3::QueryResult, v3::Error>> {
        let parameters: Vec<SqlValue> = parameters.into_iter().map(Into::into).collect();
        let execute = || {
            let result = self.connection(&connection)?.execute_blocking(
                &statement,
                &parameters,
                &self.host_call_limits,
            )?;
            Ok(v3::QueryResult {
                columns: result.columns,
                rows: v3_rows(result.rows),
            })
        };
        Ok(execute())
    }

    fn last_insert_rowid(
        &mut self,
        connection: Resource<DatabaseConnection>,
    ) -> wasmtime::Result<i64> {
        Ok(self.connection(&connection)?.last_insert_rowid())
    }

    fn changes(&mut self, connection: Resource<DatabaseConnection>) -> wasmtime::Result<u64> {
        Ok(self.connection(&connection)?.changes())
    }

    fn drop(&mut self, connection: Resource<DatabaseConnection>) -> wasmtime::Result<()> {
        self.close_connection(connection)
    }
}

impl<T: Send> v3::HostConnectionWithStore<T> for Spin3 {
    async fn open_async(
        accessor: &Accessor<T, Self>,
        database: String,
    ) -> wasmtime::Result<Result<Resource<DatabaseConnection>, v3::Error>> {
        let open = async {
            let database = accessor.with(|mut access| access.get().database(&database))?;
            let connection = database.connect().await?;
            Ok(accessor.with(|mut access| access.get().keep_connection(connection))?)
        };
        Ok(open.await)
    }

    async fn execute_async(
        accessor: &Accessor<T, Self>,
        connection: Resource<DatabaseConnection>,
        statement: String,
        parameters: Vec<v3::Value>,
    ) -> wasmtime::Result<
        Result<
            (
                Vec<String>,
                StreamReader<v3::RowResult>,
                FutureReader<Result<(), v3::Error>>,
            ),
            v3::Error,
        >,
    > {
        let parameters = parameters.into_iter().map(Into::into).collect();
        let handle = accessor.with(|mut access| {
            let state = access.get();
            Ok((state.connection(&connection)?, state.host_call_limits))
        });
        let result = match handle {
            Ok((handle, limits)) => handle.execute(statement, parameters, limits).await,
            Err(error) => Err(error),
        };
        let result = match result {
            Ok(result) => result,
            Err(error) => return Ok(Err(error.into())),
        };
        // The rows are read whole (as Spin reads them), then streamed.
        accessor.with(|mut access| {
            let rows = StreamReader::new(&mut access, v3_rows(result.rows))?;
            let done = FutureReader::new(&mut access, ready(Ok::<(), v3::Error>(())))?;
            Ok(Ok((result.columns, rows, done)))
        })
    }

    async fn last_insert_rowid_async(
        accessor: &Accessor<T, Self>,
        connection: Resource<DatabaseConnection>,
    ) -> wasmtime::Result<i64> {
        let connection = accessor.with(|mut access| access.get().connection(&connection))?;
        Ok(connection.last_insert_rowid())
    }

    async fn changes_async(
        accessor: &Accessor<T, Self>,
        connection: Resource<DatabaseConnection>,
    ) -> wasmtime::Result<u64> {
        let connection = accessor.with(|mut access| access.get().connection(&connection))?;
        Ok(connection.changes())
    }
}
