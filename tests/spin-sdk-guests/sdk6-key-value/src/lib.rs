//! A Redis component written with spin-sdk 6 (`sdk7-key-value` builds this very source against
//! spin-sdk 7) that keeps state as Spin users do, through each interface the SDKs import:
//!
//! - every message is counted under `messages` with `wasi:keyvalue` atomics (`increment`);
//! - a message `count` stops there; any other is stored under `last` with spin-sdk's
//!   `key_value::Store` (`spin:key-value@3.0.0`), appended to `journal` with a
//!   `wasi:keyvalue` compare-and-swap (retried when another instance won) and read back with a
//!   batch `get-many`, and appended to the default database's `seen` table with
//!   `sqlite::Connection` (`spin:sqlite@3.1.0`);
//! - through the raw bindings' synchronous `open`, `execute` and `changes` (v3.1 has both
//!   kinds), it touches the new row and counts the rows;
//! - it then prints `state count=<n> keys=<sorted keys> journal=<journal> rowid=<id>
//!   bodies=<all bodies> sync=<rows counted>/<rows touched>`.

use spin_sdk::experimental::wasi::keyvalue::{atomics, batch, store as wasi_keyvalue};
use spin_sdk::key_value::Store;
use spin_sdk::redis_subscriber;
use spin_sdk::sqlite::{Connection, Value, wit::sqlite as raw_sqlite};

#[redis_subscriber]
async fn on_message(message: Vec<u8>) -> anyhow::Result<()> {
    let text = String::from_utf8(message)?;
    let bucket =
        wasi_keyvalue::open("default").map_err(|error| anyhow::anyhow!("open: {error:?}"))?;
    let count = atomics::increment(&bucket, "messages", 1)
        .map_err(|error| anyhow::anyhow!("increment: {error:?}"))?;
    if text == "count" {
        return Ok(());
    }

    let store = Store::open_default().await?;
    store.set("last", text.as_bytes()).await?;

    let mut cas = atomics::Cas::new(&bucket, "journal")
        .map_err(|error| anyhow::anyhow!("cas: {error:?}"))?;
    loop {
        let mut journal = cas
            .current()
            .map_err(|error| anyhow::anyhow!("current: {error:?}"))?
            .unwrap_or_default();
        if !journal.is_empty() {
            journal.push(b',');
        }
        journal.extend_from_slice(text.as_bytes());
        match atomics::swap(cas, &journal) {
            Ok(()) => break,
            Err(atomics::CasError::CasFailed(fresh)) => cas = fresh,
            Err(atomics::CasError::StoreError(error)) => anyhow::bail!("swap: {error:?}"),
        }
    }
    let journal = batch::get_many(&bucket, &["journal".to_owned()])
        .map_err(|error| anyhow::anyhow!("get-many: {error:?}"))?
        .into_iter()
        .find_map(|(key, value)| (key == "journal").then_some(value).flatten())
        .unwrap_or_default();
    let journal = String::from_utf8(journal)?;

    let mut keys = store.get_keys().await.collect().await?;
    keys.sort();

    let db = Connection::open_default().await?;
    db.execute(
        "CREATE TABLE IF NOT EXISTS seen (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
        [],
    )
    .await?
    .result()
    .await?;
    db.execute("INSERT INTO seen (body) VALUES (?)", [Value::Text(text)])
        .await?
        .result()
        .await?;
    let rowid = db.last_insert_rowid().await;
    let rows = db
        .execute("SELECT body FROM seen ORDER BY id", [])
        .await?
        .collect()
        .await?;
    let bodies: Vec<String> = rows
        .iter()
        .filter_map(|row| row.get::<&str>(0).map(str::to_owned))
        .collect();

    let raw = raw_sqlite::Connection::open("default").map_err(|error| anyhow::anyhow!("{error:?}"))?;
    raw.execute(
        "UPDATE seen SET body = body WHERE id = ?",
        &[Value::Integer(rowid)],
    )
    .map_err(|error| anyhow::anyhow!("{error:?}"))?;
    let touched = raw.changes();
    let counted = raw
        .execute("SELECT count(*) FROM seen", &[])
        .map_err(|error| anyhow::anyhow!("{error:?}"))?
        .rows
        .first()
        .and_then(|row| row.get::<i64>(0))
        .unwrap_or(-1);
    println!(
        "state count={count} keys={keys:?} journal={journal} rowid={rowid} bodies={bodies:?} \
         sync={counted}/{touched}"
    );
    Ok(())
}
