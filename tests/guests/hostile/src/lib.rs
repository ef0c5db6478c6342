//! A test guest that asks the host for too much, for the hostile-guest tests. On each tick it
//! makes the one attack its `attack` variable names, on the `default` database (or the files its
//! `path` variable names), and prints `attack=<name> ok` or `attack=<name> refused: <error>`:
//!
//! - `attach`: `ATTACH` the SQLite file at `path` and read its key-value table;
//! - `vacuum-into`: `VACUUM INTO` a new file at `path`;
//! - `pragma`: `PRAGMA journal_mode = DELETE`;
//! - `endless`: a recursive query that never ends;
//! - `huge-result`: a result of about 3 GB (30,000 rows of 100 KB);
//! - `write`: inserts the tick's scheduled time into `ticks` (which must exist), however long
//!   it waits for the lock, and prints `scheduled=<ms>` with its outcome;
//! - `temp-trigger`: leaves a `TEMP` trigger on its connection that would empty `t` on insert,
//!   then checks that an insert into `t` is kept (a trigger left by an earlier instance would
//!   have emptied it).
//! - `refused-http`: a `POST` to `path` (an authority the component does not list) whose body it
//!   keeps open until the answer comes, as a client streaming its upload would; prints
//!   `attack=refused-http refused: <error>` once the host answers.

use spin_trigger_sdk::sqlite::Connection;
use spin_trigger_sdk::{timer::Tick, timer_component, variables};

#[timer_component]
fn attack(tick: Tick) -> Result<(), String> {
    let attack = variables::get("attack").map_err(|error| error.to_string())?;
    let path = variables::get("path").unwrap_or_default();
    let db = Connection::open_default().map_err(|error| error.to_string())?;
    let outcome = match attack.as_str() {
        "attach" => db
            .execute(format!("ATTACH DATABASE '{path}' AS other"), &[])
            .and_then(|_| db.execute("SELECT key FROM other.spin_key_value", &[])),
        "vacuum-into" => db.execute(format!("VACUUM INTO '{path}'"), &[]),
        "pragma" => db.execute("PRAGMA journal_mode = DELETE", &[]),
        "endless" => db.execute(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
            &[],
        ),
        "huge-result" => db.execute(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 30000) \
             SELECT zeroblob(100000) FROM c",
            &[],
        ),
        "temp-trigger" => {
            db.execute("CREATE TABLE IF NOT EXISTS t (x)", &[])
                .map_err(|error| error.to_string())?;
            let count = db
                .execute("INSERT INTO t VALUES (1)", &[])
                .and_then(|_| db.execute("SELECT count(*) AS n FROM t", &[]))
                .map_err(|error| error.to_string())?
                .rows()
                .next()
                .and_then(|row| row.get::<i64>("n"))
                .unwrap_or(-1);
            println!("rows in t: {count}");
            db.execute(
                "CREATE TEMP TRIGGER IF NOT EXISTS wipe AFTER INSERT ON t BEGIN DELETE FROM t; END",
                &[],
            )
        }
        "write" => {
            let scheduled = tick
                .scheduled_at
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|error| error.to_string())?
                .as_millis();
            let outcome = db.execute(
                "INSERT INTO ticks (at) VALUES (?)",
                &[spin_trigger_sdk::sqlite::Value::from(scheduled as i64)],
            );
            println!("scheduled={scheduled}");
            outcome
        }
        "refused-http" => {
            match refused_http(&path) {
                Ok(()) => println!("attack={attack} ok"),
                Err(error) => println!("attack={attack} refused: {error}"),
            }
            return Ok(());
        }
        other => return Err(format!("unknown attack `{other}`")),
    };
    match outcome {
        Ok(_) => println!("attack={attack} ok"),
        Err(error) => println!("attack={attack} refused: {error}"),
    }
    Ok(())
}

/// A `POST` to `authority` whose body stays open while the guest waits for the answer:
/// `Err(<the answer's error>)`, or `Ok` if it was sent.
fn refused_http(authority: &str) -> Result<(), String> {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
    let request = OutgoingRequest::new(Fields::new());
    let set = [
        request.set_method(&Method::Post),
        request.set_scheme(Some(&Scheme::Http)),
        request.set_authority(Some(authority)),
        request.set_path_with_query(Some("/upload")),
    ];
    if set.iter().any(Result::is_err) {
        return Err("building the request".to_owned());
    }
    let body = request.body().map_err(|()| "taking the body".to_owned())?;
    let stream = body.write().map_err(|()| "opening the body".to_owned())?;
    stream
        .blocking_write_and_flush(b"the first part of an upload")
        .map_err(|error| format!("writing the body: {error:?}"))?;
    let response = outgoing_handler::handle(request, None).map_err(|error| format!("{error:?}"))?;
    response.subscribe().block();
    let answer = response.get();
    drop(stream);
    let _ = OutgoingBody::finish(body, None);
    match answer {
        Some(Ok(Ok(_))) => Ok(()),
        Some(Ok(Err(error))) => Err(format!("{error:?}")),
        _ => Err("no answer".to_owned()),
    }
}
