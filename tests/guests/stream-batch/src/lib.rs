//! A test guest taking stream entries in batches (`Batch`). With a `redis_address` variable it
//! records each batch at that address with outbound Redis commands:
//!
//! - `RPUSH batch-sizes <n>` for every call;
//! - `SADD handled <ids>` for the entries it handled; ids already there count into
//!   `INCRBY duplicates`.
//!
//! An entry whose payload is `fail` is marked failed ("asked to fail") and the others handled;
//! `later` is marked to be tried again after a second, on its first attempt
//! (`Batch::retry_after`); `poison` is sent to the dead-letter stream (`Batch::dead_letter`); a
//! payload of `trap` panics, failing the whole batch. Without the variable (the benchmark) it
//! prints each payload, as `redis-print` does.

use spin_trigger_sdk::redis::{Batch, Connection, Parameter};
use spin_trigger_sdk::{redis_component, variables};

#[redis_component]
fn on_batch(batch: Batch) -> anyhow::Result<()> {
    if batch.iter().any(|message| message.payload == b"trap") {
        panic!("asked to trap");
    }
    let Ok(address) = variables::get("redis_address") else {
        for message in &batch {
            println!("{}", String::from_utf8_lossy(&message.payload));
        }
        return Ok(());
    };
    let redis = Connection::open(&address)?;
    redis.execute(
        "RPUSH",
        &[
            Parameter::Binary(b"batch-sizes".to_vec()),
            Parameter::Binary(batch.len().to_string().into_bytes()),
        ],
    )?;
    let mut handled = Vec::new();
    for message in &batch {
        if message.payload == b"fail" {
            batch.fail(message, "asked to fail");
            continue;
        }
        if message.payload == b"poison" {
            batch.dead_letter(message, "poisoned");
            continue;
        }
        let entry = message
            .entry
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("not a stream entry"))?;
        if message.payload == b"later" && entry.attempt == 1 {
            batch.retry_after(message, std::time::Duration::from_secs(1));
            continue;
        }
        handled.push(entry.id.as_str());
    }
    if !handled.is_empty() {
        let added = redis.sadd("handled", &handled)?;
        let repeated = handled.len() as i64 - i64::from(added);
        if repeated > 0 {
            redis.execute(
                "INCRBY",
                &[
                    Parameter::Binary(b"duplicates".to_vec()),
                    Parameter::Int64(repeated),
                ],
            )?;
        }
    }
    Ok(())
}
