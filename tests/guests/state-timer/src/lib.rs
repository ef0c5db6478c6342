//! A test guest for the host's state tests, built with this project's SDK. On each tick it
//! counts the tick in the key-value store its `store` variable names (`default` when unset),
//! as JSON under `ticks`, and prints `ticks=<n> store=<label>` once the write returned. When its
//! `database` variable names a database, it then inserts the count into that database's
//! `ticks` table and prints `rows=<count> last=<largest n> rowid=<id>`. A failure is the
//! handler's error, which the host reports.

use spin_trigger_sdk::key_value::Store;
use spin_trigger_sdk::sqlite::{Connection, Value};
use spin_trigger_sdk::{timer::Tick, timer_component, variables};

#[timer_component]
fn count(_tick: Tick) -> Result<(), String> {
    let label = variables::get("store").unwrap_or_else(|_| "default".to_owned());
    let store = Store::open(&label).map_err(|error| format!("opening store `{label}`: {error}"))?;
    let ticks = store
        .get_json::<u64>("ticks")
        .map_err(|error| error.to_string())?
        .unwrap_or(0)
        + 1;
    store
        .set_json("ticks", &ticks)
        .map_err(|error| error.to_string())?;
    println!("ticks={ticks} store={label}");

    let database = variables::get("database").unwrap_or_default();
    if database.is_empty() {
        return Ok(());
    }
    let db = Connection::open(&database)
        .map_err(|error| format!("opening database `{database}`: {error}"))?;
    db.execute(
        "INSERT INTO ticks (n) VALUES (?)",
        &[Value::from(ticks as i64)],
    )
    .map_err(|error| error.to_string())?;
    let rowid = db
        .execute("SELECT last_insert_rowid() AS id", &[])
        .map_err(|error| error.to_string())?;
    let rowid: i64 = rowid
        .rows()
        .next()
        .and_then(|row| row.get("id"))
        .unwrap_or(-1);
    let summary = db
        .execute("SELECT count(*) AS rows, max(n) AS last FROM ticks", &[])
        .map_err(|error| error.to_string())?;
    let row = summary.rows().next().ok_or("no summary row")?;
    println!(
        "rows={} last={} rowid={rowid}",
        row.get::<i64>("rows").unwrap_or(-1),
        row.get::<i64>("last").unwrap_or(-1)
    );
    Ok(())
}
