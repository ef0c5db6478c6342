//! Key-value stores and SQLite databases, end to end on real files and a real redis-server:
//! where the data lands (Spin's file names in the state directory), that it survives runs and a
//! SIGKILL, that many instances and two hosts share a store without losing a write, the runtime
//! config's labels, `--key-value` and `--sqlite`, and the refusals (an unlisted label in the
//! guest, a label nothing provides at start). Components built with this project's SDK and with
//! spin-sdk 6 and 7.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{AppDir, RedisServer, TestApp, guest, spin_sdk_guest};

/// An app whose timer counts its ticks with `state-timer-guest`; `fields` are extra lines for
/// its component (stores, databases, variables).
fn counting_app(fields: &str) -> AppDir {
    TestApp::new("state")
        .trigger("timer", "counter", "interval = \"50ms\"")
        .component("counter", &guest("state-timer-guest"), fields)
        .write()
}

/// The value of `key` in store `store` of a key-value file, read as Spin's layout has it.
fn stored(file: &Path, store: &str, key: &str) -> Option<Vec<u8>> {
    let connection = rusqlite::Connection::open(file).unwrap();
    rusqlite::OptionalExtension::optional(connection.query_row(
        "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
        (store, key),
        |row| row.get(0),
    ))
    .unwrap()
}

/// The `n` of each `ticks=<n>` line in `stdout`.
fn tick_counts(stdout: &str) -> Vec<u64> {
    stdout
        .lines()
        .filter_map(|line| line.split("ticks=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect()
}

#[test]
fn a_timer_counts_its_ticks_in_the_default_store_across_runs_where_spin_keeps_it() {
    let app = counting_app("key_value_stores = [\"default\"]");
    for expected in 1..=3 {
        let run = app.run(&["--once"]);
        assert!(run.success, "{}", run.stderr);
        assert_eq!(tick_counts(&run.stdout), [expected], "{}", run.stdout);
    }
    let file = app.path().join(".spin/sqlite_key_value.db");
    assert_eq!(stored(&file, "default", "ticks"), Some(b"3".to_vec()));

    // `--state-dir` moves it; `--key-value` sets keys in it before the first event.
    let elsewhere = tempfile::tempdir().unwrap();
    let state_dir = elsewhere.path().join("state");
    let run = app.run(&[
        "--once",
        "--state-dir",
        state_dir.to_str().unwrap(),
        "--key-value",
        "ticks=41",
        "--key-value",
        "greeting=a=b",
    ]);
    assert!(run.success, "{}", run.stderr);
    assert_eq!(tick_counts(&run.stdout), [42], "{}", run.stdout);
    let moved = state_dir.join("sqlite_key_value.db");
    assert_eq!(stored(&moved, "default", "greeting"), Some(b"a=b".to_vec()));
    assert_eq!(stored(&file, "default", "ticks"), Some(b"3".to_vec()));
}

#[test]
fn a_write_that_returned_survives_sigkill() {
    let app = counting_app("key_value_stores = [\"default\"]");
    let host = app.start();
    assert!(
        host.wait_for_stdout_lines("ticks=", 5, Duration::from_secs(60)),
        "the counter did not tick five times"
    );
    let killed = host.kill();
    let printed = tick_counts(&killed.stdout);
    let last_printed = *printed.last().expect("ticks before the kill");
    assert_eq!(printed, (1..=last_printed).collect::<Vec<_>>());

    let run = app.run(&["--once"]);
    assert!(run.success, "{}", run.stderr);
    let next = tick_counts(&run.stdout)[0];
    // Every count printed was written before it was printed; at most one more write can have
    // landed between the last line and the kill.
    assert!(
        next == last_printed + 1 || next == last_printed + 2,
        "printed up to {last_printed} before SIGKILL, then counted {next}"
    );
    let connection =
        rusqlite::Connection::open(app.path().join(".spin/sqlite_key_value.db")).unwrap();
    let check: String = connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[test]
fn a_sqlite_migration_runs_before_the_first_event_then_the_component_inserts_and_queries() {
    let app = counting_app(
        "key_value_stores = [\"default\"]\nsqlite_databases = [\"default\"]\n\
         variables = { database = \"default\" }",
    );
    std::fs::write(
        app.path().join("schema.sql"),
        "CREATE TABLE ticks (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);\n\
         INSERT INTO ticks (n) VALUES (100);\n",
    )
    .unwrap();
    let schema = format!("@{}", app.path().join("schema.sql").display());
    let run = app.run(&[
        "--once",
        "--sqlite",
        &schema,
        "--sqlite",
        "INSERT INTO ticks (n) VALUES (200)",
    ]);
    assert!(run.success, "{}", run.stderr);
    run.assert_stdout_has("rows=3 last=200 rowid=3");
    let run = app.run(&["--once"]);
    assert!(run.success, "{}", run.stderr);
    run.assert_stdout_has("rows=4 last=200 rowid=4");

    let database = rusqlite::Connection::open(app.path().join(".spin/sqlite_db.db")).unwrap();
    let counted: Vec<i64> = database
        .prepare("SELECT n FROM ticks ORDER BY id")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(counted, [100, 200, 1, 2]);

    // A failing statement stops the host before anything runs, naming it.
    let run = app.run(&["--once", "--sqlite", "CREATE TABLE ticks (n)"]);
    assert!(!run.success);
    assert!(
        run.stderr
            .contains("--sqlite: running `CREATE TABLE ticks (n)`")
            && run.stderr.contains("already exists"),
        "{}",
        run.stderr
    );
    run.assert_stdout_lacks("ticks=");
}

#[test]
fn runtime_config_labels_put_stores_and_databases_where_it_says() {
    let app = counting_app(
        "key_value_stores = [\"cache\"]\nsqlite_databases = [\"reports\"]\n\
         variables = { store = \"cache\", database = \"reports\" }",
    );
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("runtime-config.toml");
    std::fs::write(
        &config,
        "[key_value_store.cache]\ntype = \"spin\"\npath = \"data/cache.db\"\n\n\
         [sqlite_database.reports]\ntype = \"spin\"\npath = \"reports.db\"\n",
    )
    .unwrap();
    let manifest = app.manifest();
    // A relative key-value path is taken from the runtime config's directory, a relative
    // SQLite path from the working directory (as Spin takes them).
    let run = || {
        common::run_host_in(
            app.path(),
            &[
                "up",
                "--once",
                "-f",
                &manifest,
                "--runtime-config-file",
                config.to_str().unwrap(),
            ],
        )
    };
    let first = run();
    assert!(!first.success, "the table does not exist yet");
    first.assert_stdout_has("ticks=1 store=cache");
    first.assert_stderr_has("no such table: ticks");
    rusqlite::Connection::open(app.path().join("reports.db"))
        .unwrap()
        .execute_batch("CREATE TABLE ticks (n INTEGER NOT NULL);")
        .unwrap();
    let run = run();
    assert!(run.success, "{}", run.stderr);
    run.assert_stdout_has("ticks=2 store=cache");
    run.assert_stdout_has("rows=1 last=2");
    assert_eq!(
        stored(&config_dir.path().join("data/cache.db"), "cache", "ticks"),
        Some(b"2".to_vec())
    );
    assert!(!app.path().join(".spin/sqlite_key_value.db").exists());
}

#[test]
fn a_label_the_component_does_not_list_is_refused_in_the_guest_and_logged() {
    let app = counting_app("key_value_stores = [\"default\"]\nvariables = { store = \"secrets\" }");
    let run = app.run(&["--once"]);
    assert!(!run.success);
    assert!(
        run.stderr
            .contains("opening store `secrets`: access denied: the store's label is not in the component's key_value_stores"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("key-value store refused: not in the component's key_value_stores")
            && run.stderr.contains("label=\"secrets\"")
            && run.stderr.contains("component=counter"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_label_nothing_provides_stops_the_host_before_anything_runs() {
    let app = counting_app("key_value_stores = [\"default\", \"cache\"]");
    let run = app.run(&["--once"]);
    assert!(!run.success);
    run.assert_stderr_has(
        "component `counter` lists key-value store `cache` in key_value_stores: no key-value \
             store `cache`: only `default` exists without configuration; add \
             [key_value_store.cache] to the runtime config file (--runtime-config-file)",
    );
    run.assert_stdout_lacks("ticks=");

    let app = counting_app("sqlite_databases = [\"reports\"]");
    let run = app.run(&["--once"]);
    assert!(!run.success);
    run.assert_stderr_has(
        "component `counter` lists SQLite database `reports` in sqlite_databases: no SQLite \
             database `reports`",
    );
}

/// An app running the spin-sdk state guest (`sdk6-key-value`, `sdk7-key-value`) on channel
/// `state`, `max_in_flight` at once.
fn spin_sdk_state_app(server: &RedisServer, guest: &str, max_in_flight: usize) -> AppDir {
    TestApp::new("spin-sdk-state")
        .redis_address("redis", &server.url())
        .trigger(
            "redis",
            "keeper",
            &format!("channel = \"state\"\nmax_in_flight = {max_in_flight}"),
        )
        .component(
            "keeper",
            &spin_sdk_guest(guest),
            "key_value_stores = [\"default\"]\nsqlite_databases = [\"default\"]",
        )
        .write()
}

/// A runtime config putting the default key-value store in `server`'s Redis database.
fn redis_store_config(server: &RedisServer) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("runtime-config.toml");
    std::fs::write(
        &config,
        format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n",
            server.url()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    (dir, config)
}

/// spin-sdk's `key_value::Store` (v3, `get_keys` a stream), `sqlite::Connection` (v3.1,
/// `execute` a stream of rows, `last_insert_rowid`) and `wasi:keyvalue` atomics
/// (`increment`, compare-and-swap) and batch, in one handler; the default store a SQLite file,
/// or with `redis_store` the Redis server's database.
fn spin_sdk_component_keeps_state(guest: &str, redis_store: bool) {
    let server = RedisServer::start();
    let app = spin_sdk_state_app(&server, guest, 1);
    let (_config_dir, config) = redis_store_config(&server);
    let host = if redis_store {
        app.start_with(&["--runtime-config-file", &config], &[])
    } else {
        app.start()
    };
    server.wait_for_subscribers("state", 1);
    server.publish("state", "count");
    server.publish("state", "hello");
    assert!(host.wait_for_stdout_lines("state count=", 1, Duration::from_secs(30)));
    server.publish("state", "world");
    assert!(host.wait_for_stdout_lines("state count=", 2, Duration::from_secs(30)));
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stdout.contains(
            "[keeper] state count=2 keys=[\"journal\", \"last\", \"messages\"] journal=hello \
             rowid=1 bodies=[\"hello\"] sync=1/1\n"
        ) && run.stdout.contains(
            "[keeper] state count=3 keys=[\"journal\", \"last\", \"messages\"] \
             journal=hello,world rowid=2 bodies=[\"hello\", \"world\"] sync=2/1\n"
        ),
        "{}",
        run.stdout
    );
    assert!(app.path().join(".spin/sqlite_db.db").exists());
    let file = app.path().join(".spin/sqlite_key_value.db");
    if redis_store {
        assert!(!file.exists());
        let mut connection = server.client().get_connection().unwrap();
        let stored: (Vec<u8>, i64) = redis::cmd("MGET")
            .arg("last")
            .arg("messages")
            .query(&mut connection)
            .unwrap();
        assert_eq!(stored, (b"world".to_vec(), 3));
        return;
    }
    assert_eq!(stored(&file, "default", "last"), Some(b"world".to_vec()));
    assert_eq!(
        stored(&file, "default", "messages"),
        Some(3i64.to_le_bytes().to_vec())
    );
}

#[test]
fn a_spin_sdk_6_component_keeps_state_in_key_value_and_sqlite() {
    spin_sdk_component_keeps_state("sdk6-key-value", false);
}

#[test]
fn a_spin_sdk_7_component_keeps_state_in_key_value_and_sqlite() {
    spin_sdk_component_keeps_state("sdk7-key-value", false);
}

#[test]
fn a_spin_sdk_7_component_keeps_state_in_a_redis_backed_store() {
    spin_sdk_component_keeps_state("sdk7-key-value", true);
}

/// Publishes `count` on `state`, `messages` times, on one connection.
fn publish_counts(server: &RedisServer, messages: usize) {
    let mut connection = server.client().get_connection().unwrap();
    for _ in 0..messages {
        redis::cmd("PUBLISH")
            .arg("state")
            .arg("count")
            .query::<i64>(&mut connection)
            .unwrap();
    }
}

/// Polls `read` until it returns `expected` (up to `limit`); returns the last value read.
fn wait_for<T: PartialEq + Copy>(expected: T, limit: Duration, mut read: impl FnMut() -> T) -> T {
    let deadline = Instant::now() + limit;
    loop {
        let value = read();
        if value == expected || Instant::now() > deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn four_instances_at_once_count_a_thousand_messages_exactly_with_atomics() {
    let server = RedisServer::start();
    let app = spin_sdk_state_app(&server, "sdk7-key-value", 4);
    let host = app.start();
    server.wait_for_subscribers("state", 1);
    publish_counts(&server, 1000);
    let file = app.path().join(".spin/sqlite_key_value.db");
    let count = |file: &Path| {
        stored(file, "default", "messages")
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
            .map(i64::from_le_bytes)
            .unwrap_or(0)
    };
    let counted = wait_for(1000, Duration::from_secs(120), || count(&file));
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert_eq!(counted, 1000, "{}", run.stderr);
    assert_eq!(count(&file), 1000);
}

#[test]
fn two_hosts_share_a_redis_backed_store() {
    let server = RedisServer::start();
    let (_config_dir, config) = redis_store_config(&server);
    let apps = [
        spin_sdk_state_app(&server, "sdk7-key-value", 2),
        spin_sdk_state_app(&server, "sdk6-key-value", 2),
    ];
    let hosts: Vec<_> = apps
        .iter()
        .map(|app| app.start_with(&["--runtime-config-file", &config], &[]))
        .collect();
    server.wait_for_subscribers("state", 2);
    // Each host gets every message: 200 messages are 400 increments of one shared counter.
    publish_counts(&server, 200);
    let mut connection = server.client().get_connection().unwrap();
    let counted = wait_for(400, Duration::from_secs(120), || {
        redis::cmd("GET")
            .arg("messages")
            .query::<Option<i64>>(&mut connection)
            .unwrap()
            .unwrap_or(0)
    });
    for host in hosts {
        let run = host.stop();
        assert!(run.success, "{}", run.stderr);
    }
    assert_eq!(counted, 400);
    for app in &apps {
        assert!(!app.path().join(".spin/sqlite_key_value.db").exists());
    }
}

/// An app built in code lists its stores and databases like a manifest; the embedder says where
/// they are (`EngineOptions::state`), and `--key-value` / `--sqlite`'s seeding applies before
/// the first event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedder_builds_an_app_with_stores_and_says_where_they_are() {
    use spin_trigger_host::app_builder::{ComponentBuilder, TriggerBuilder};
    use spin_trigger_host::variables::Providers;
    use spin_trigger_host::{App, EngineOptions, Runtime, SqliteDatabaseConfig};

    let dir = tempfile::tempdir().unwrap();
    let app = App::builder("embedded-state")
        .component(
            ComponentBuilder::from_file("counter", guest("state-timer-guest"))
                .key_value_store("default")
                .sqlite_database("reports")
                .variable("database", "reports"),
        )
        .trigger(TriggerBuilder::timer("counter").interval(Duration::from_secs(1)))
        .build()
        .unwrap();
    let variables = app.resolve_variables(&Providers::default()).unwrap();
    let mut options = EngineOptions::default();
    options.cache_dir = None;
    options.state.state_dir = Some(dir.path().join("state"));
    options.state.sqlite_databases = [(
        "reports".to_owned(),
        SqliteDatabaseConfig {
            path: Some(dir.path().join("reports.db")),
        },
    )]
    .into();
    options.state.key_values = vec![("ticks".to_owned(), "9".to_owned())];
    options.state.sqlite_statements = vec!["CREATE TABLE ticks (n INTEGER NOT NULL)".to_owned()];
    // `--sqlite` runs against the default database; the component's is `reports`.
    let runtime = Runtime::new(&app, &variables, options).unwrap();
    let error = runtime.run_once().await.unwrap_err();
    assert!(format!("{error:#}").contains("`counter`"), "{error:#}");
    let key_value = dir.path().join("state/sqlite_key_value.db");
    assert_eq!(stored(&key_value, "default", "ticks"), Some(b"10".to_vec()));
    let default_database =
        rusqlite::Connection::open(dir.path().join("state/sqlite_db.db")).unwrap();
    default_database
        .execute("INSERT INTO ticks VALUES (1)", [])
        .unwrap();

    let reports = rusqlite::Connection::open(dir.path().join("reports.db")).unwrap();
    reports
        .execute_batch("CREATE TABLE ticks (n INTEGER NOT NULL)")
        .unwrap();
    runtime.run_once().await.unwrap();
    assert_eq!(stored(&key_value, "default", "ticks"), Some(b"11".to_vec()));
    let counted: Vec<i64> = reports
        .prepare("SELECT n FROM ticks")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(counted, [11]);
}

/// Three timers at once on one SQLite file: two key-value labels configured to the same path
/// (two connections, each waiting out the other's write lock) plus `default`, all inserting
/// into one database. Nothing is lost: every count printed is stored, every insert is a row.
#[test]
fn several_timers_share_one_store_file_and_one_database_without_losing_a_write() {
    let mut app = TestApp::new("shared-state");
    for (id, label) in [("first", "left"), ("second", "right"), ("third", "default")] {
        app = app.trigger("timer", id, "interval = \"20ms\"").component(
            id,
            &guest("state-timer-guest"),
            &format!(
                "key_value_stores = [\"{label}\"]\nsqlite_databases = [\"default\"]\n\
                     variables = {{ store = \"{label}\", database = \"default\" }}"
            ),
        );
    }
    let app = app.write();
    let config = app.path().join("runtime-config.toml");
    std::fs::write(
        &config,
        "[key_value_store.left]\ntype = \"spin\"\npath = \"shared.db\"\n\
         [key_value_store.right]\ntype = \"spin\"\npath = \"shared.db\"\n",
    )
    .unwrap();
    std::fs::write(
        app.path().join("schema.sql"),
        "CREATE TABLE ticks (n INTEGER NOT NULL);",
    )
    .unwrap();
    let schema = format!("@{}", app.path().join("schema.sql").display());
    let host = app.start_with(
        &[
            "--runtime-config-file",
            config.to_str().unwrap(),
            "--sqlite",
            &schema,
        ],
        &[],
    );
    assert!(host.wait_for_stdout_lines("rows=", 60, Duration::from_secs(60)));
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    run.assert_stderr_lacks("timer handler failed");

    let last_count = |id: &str| {
        run.stdout
            .lines()
            .filter(|line| line.starts_with(&format!("[{id}] ticks=")))
            .filter_map(|line| tick_counts(line).first().copied())
            .max()
            .unwrap_or_else(|| panic!("{id} counted nothing: {}", run.stdout))
    };
    let shared = app.path().join("shared.db");
    let default = app.path().join(".spin/sqlite_key_value.db");
    let mut counted = 0;
    for (id, file, label) in [
        ("first", &shared, "left"),
        ("second", &shared, "right"),
        ("third", &default, "default"),
    ] {
        let last = last_count(id);
        assert_eq!(
            stored(file, label, "ticks"),
            Some(last.to_string().into_bytes()),
            "{id}"
        );
        counted += last;
    }
    let database = rusqlite::Connection::open(app.path().join(".spin/sqlite_db.db")).unwrap();
    let rows: i64 = database
        .query_row("SELECT count(*) FROM ticks", [], |row| row.get(0))
        .unwrap();
    assert_eq!(rows as u64, counted, "one row per count printed");
}

/// A Redis-backed store outlives a Redis restart: calls fail while the server is away (the
/// handler reports it) and work again once it is back, without restarting the host.
#[test]
fn a_redis_backed_store_reconnects_after_the_server_restarts() {
    let mut server = RedisServer::start();
    let (_config_dir, config) = redis_store_config(&server);
    let app = counting_app("key_value_stores = [\"default\"]");
    let host = app.start_with(&["--runtime-config-file", &config], &[]);
    assert!(host.wait_for_stdout_lines("ticks=", 2, Duration::from_secs(60)));
    // The restarted server keeps nothing: the count starts again at 1.
    server.restart();
    assert!(
        host.wait_for_stdout_lines("ticks=1 ", 2, Duration::from_secs(60)),
        "the store did not reconnect"
    );
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
}

/// A command a paused (or briefly busy) server answers late still succeeds: a guest's
/// key-value call waits up to its handler's deadline, not redis-rs's 500 ms default.
#[test]
fn a_key_value_store_on_a_paused_redis_server_waits_instead_of_failing() {
    let server = RedisServer::start();
    let (app, config) = common::redis_store_counter_app(&server.url());
    let host = app.start_with(&["--runtime-config-file", &config], &[]);
    host.wait_until_ready();
    assert!(host.wait_for_stdout_lines("ticks=", 1, Duration::from_secs(30)));
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(2500)
        .arg("ALL")
        .query(&mut server.client().get_connection().unwrap())
        .unwrap();
    assert!(host.wait_for_stdout_lines("ticks=", 4, Duration::from_secs(30)));
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    run.assert_stderr_lacks("handler failed");
}
