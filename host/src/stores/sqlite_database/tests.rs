//! The SQLite backend's unit tests.

use super::*;
use std::time::Instant;

/// Limits no test statement here comes near.
fn generous() -> HostCallLimits {
    HostCallLimits {
        deadline: Instant::now() + Duration::from_secs(60),
        timeout: Duration::from_secs(60),
        max_bytes: 256 << 20,
    }
}

#[tokio::test]
async fn statements_parameters_and_per_connection_counters() {
    let dir = tempfile::tempdir().unwrap();
    let database = Arc::new(SqliteDatabase::open(&dir.path().join("sub/db.sqlite")).unwrap());
    database
        .execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB);".into(),
        )
        .await
        .unwrap();
    let first = database.connect().await.unwrap();
    first
        .execute(
            "INSERT INTO t (name, score, data) VALUES (?, ?, ?)".into(),
            vec![
                SqlValue::Text("a".into()),
                SqlValue::Real(1.5),
                SqlValue::Blob(vec![1, 2]),
            ],
            generous(),
        )
        .await
        .unwrap();
    assert_eq!((first.last_insert_rowid(), first.changes()), (1, 1));
    drop(first);
    // The pooled connection comes back; the new user's counters start at 0.
    let second = database.connect().await.unwrap();
    assert_eq!((second.last_insert_rowid(), second.changes()), (0, 0));
    let result = second
        .execute(
            "SELECT id, name, score, data, NULL AS empty FROM t".into(),
            vec![],
            generous(),
        )
        .await
        .unwrap();
    assert_eq!(result.columns, ["id", "name", "score", "data", "empty"]);
    assert_eq!(
        result.rows,
        [vec![
            SqlValue::Integer(1),
            SqlValue::Text("a".into()),
            SqlValue::Real(1.5),
            SqlValue::Blob(vec![1, 2]),
            SqlValue::Null
        ]]
    );
    second
        .execute(
            "UPDATE t SET name = 'b' WHERE id > 5".into(),
            vec![],
            generous(),
        )
        .await
        .unwrap();
    assert_eq!(second.changes(), 0);
    let error = second
        .execute("SELEKT 1".into(), vec![], generous())
        .await
        .unwrap_err();
    assert!(matches!(error, SqliteError::Io(message) if message.contains("syntax error")));
}

#[tokio::test]
async fn an_open_transaction_is_rolled_back_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let database = Arc::new(SqliteDatabase::open(&dir.path().join("db.sqlite")).unwrap());
    database
        .execute_batch("CREATE TABLE t (x);".into())
        .await
        .unwrap();
    let connection = database.connect().await.unwrap();
    connection
        .execute("BEGIN".into(), vec![], generous())
        .await
        .unwrap();
    connection
        .execute("INSERT INTO t VALUES (1)".into(), vec![], generous())
        .await
        .unwrap();
    drop(connection);
    let other = database.connect().await.unwrap();
    let result = other
        .execute("SELECT count(*) FROM t".into(), vec![], generous())
        .await
        .unwrap();
    assert_eq!(result.rows, [vec![SqlValue::Integer(0)]]);
}

/// A database in a temporary directory, with one table, and a second SQLite file beside it
/// that a guest of the first must not reach.
async fn database_beside_another() -> (tempfile::TempDir, Arc<SqliteDatabase>, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let database = Arc::new(SqliteDatabase::open(&dir.path().join("db.sqlite")).unwrap());
    database
        .execute_batch("CREATE TABLE t (x);".into())
        .await
        .unwrap();
    let other = dir.path().join("other.sqlite");
    open_file(&other)
        .unwrap()
        .execute_batch("CREATE TABLE secret (s); INSERT INTO secret VALUES ('key');")
        .unwrap();
    (dir, database, other)
}

async fn refusal(connection: &DatabaseConnection, statement: &str) -> String {
    match connection
        .execute(statement.into(), vec![], generous())
        .await
    {
        Err(SqliteError::Io(message)) => message,
        other => panic!("`{statement}` was not refused: {other:?}"),
    }
}

#[tokio::test]
async fn a_guest_reaches_no_other_file() {
    let (dir, database, other) = database_beside_another().await;
    let connection = database.connect().await.unwrap();
    let other = other.display();
    let attach = refusal(&connection, &format!("ATTACH DATABASE '{other}' AS x")).await;
    assert!(attach.contains("not authorized: ATTACH"), "{attach}");
    let copy = dir.path().join("copy.sqlite");
    let vacuum = refusal(&connection, &format!("VACUUM INTO '{}'", copy.display())).await;
    assert!(!copy.exists(), "VACUUM INTO wrote a file: {vacuum}");
    assert!(vacuum.contains("not authorized"), "{vacuum}");
    let extension = refusal(&connection, "SELECT load_extension('/tmp/x.so')").await;
    assert!(extension.contains("not authorized"), "{extension}");
    // The connection is still good for the guest's own database.
    let rows = connection
        .execute("SELECT count(*) FROM t".into(), vec![], generous())
        .await
        .unwrap();
    assert_eq!(rows.rows, [vec![SqlValue::Integer(0)]]);
}

#[tokio::test]
async fn pragmas_that_reach_past_the_database_or_its_durability_are_refused() {
    let (_dir, database, _other) = database_beside_another().await;
    let connection = database.connect().await.unwrap();
    for statement in [
        "PRAGMA journal_mode = DELETE",
        "PRAGMA synchronous = OFF",
        "PRAGMA query_only = 1",
        "PRAGMA writable_schema = 1",
        "PRAGMA temp_store_directory = '/tmp'",
        "PRAGMA mmap_size = 1000000000",
        "PRAGMA cache_size = -100000000",
    ] {
        let message = refusal(&connection, statement).await;
        assert!(
            message.contains("not authorized: PRAGMA"),
            "{statement}: {message}"
        );
    }
    for statement in [
        "PRAGMA table_info(t)",
        "PRAGMA journal_mode",
        "PRAGMA user_version = 3",
        "PRAGMA integrity_check",
    ] {
        connection
            .execute(statement.into(), vec![], generous())
            .await
            .unwrap_or_else(|error| panic!("{statement}: {error}"));
    }
}

#[tokio::test]
async fn nothing_an_instance_sets_on_a_connection_reaches_the_next() {
    let (_dir, database, _other) = database_beside_another().await;
    let first = database.connect().await.unwrap();
    // SQLite as built here enforces foreign keys by default; an instance turns it off.
    for statement in [
        "PRAGMA foreign_keys = OFF",
        "CREATE TEMP TABLE scratch (y)",
        "CREATE TEMP TRIGGER spy AFTER INSERT ON t BEGIN DELETE FROM t; END",
    ] {
        first
            .execute(statement.into(), vec![], generous())
            .await
            .unwrap_or_else(|error| panic!("{statement}: {error}"));
    }
    drop(first);
    let second = database.connect().await.unwrap();
    let keys = second
        .execute("PRAGMA foreign_keys".into(), vec![], generous())
        .await
        .unwrap();
    assert_eq!(keys.rows, [vec![SqlValue::Integer(1)]]);
    let temp = second
        .execute(
            "SELECT count(*) FROM temp.sqlite_master".into(),
            vec![],
            generous(),
        )
        .await
        .unwrap();
    assert_eq!(temp.rows, [vec![SqlValue::Integer(0)]]);
    second
        .execute("INSERT INTO t VALUES (1)".into(), vec![], generous())
        .await
        .unwrap();
    let count = second
        .execute("SELECT count(*) FROM t".into(), vec![], generous())
        .await
        .unwrap();
    assert_eq!(
        count.rows,
        [vec![SqlValue::Integer(1)]],
        "a trigger survived"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_statement_ends_at_the_deadline() {
    let (_dir, database, _other) = database_beside_another().await;
    let connection = database.connect().await.unwrap();
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                   SELECT count(*) FROM c";
    let limits = HostCallLimits {
        deadline: Instant::now() + Duration::from_millis(300),
        timeout: Duration::from_millis(300),
        max_bytes: 256 << 20,
    };
    let error = connection
        .execute(endless.into(), vec![], limits)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("deadline"), "{error}");
    // The synchronous call too; and a call after the deadline does not start.
    let error = connection
        .execute_blocking("SELECT 1", &[], &limits)
        .unwrap_err();
    assert!(error.to_string().contains("deadline"), "{error}");
    // The connection itself is fine for a call with time left.
    connection
        .execute("SELECT 1".into(), vec![], generous())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_result_stays_within_the_instance_memory() {
    let (_dir, database, _other) = database_beside_another().await;
    let connection = database.connect().await.unwrap();
    let small = HostCallLimits {
        deadline: Instant::now() + Duration::from_secs(60),
        timeout: Duration::from_secs(60),
        max_bytes: 1 << 20,
    };
    let many = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                SELECT zeroblob(1000) FROM c";
    let error = connection
        .execute(many.into(), vec![], small)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("max_memory"), "{error}");
    let empty_rows = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                      SELECT NULL FROM c";
    let error = connection
        .execute(empty_rows.into(), vec![], small)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("max_memory"), "{error}");
    let one_large = connection
        .execute("SELECT zeroblob(2000000)".into(), vec![], small)
        .await
        .unwrap_err();
    assert!(one_large.to_string().contains("too big"), "{one_large}");
    let fits = connection
        .execute("SELECT zeroblob(1000)".into(), vec![], small)
        .await
        .unwrap();
    assert_eq!(fits.rows, [vec![SqlValue::Blob(vec![0; 1000])]]);
}
