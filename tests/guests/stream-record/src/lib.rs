//! A test guest for `redis-stream` triggers, taking the whole `Message`: records every entry it
//! handles, at the address in its `redis_address` variable, with outbound Redis commands:
//!
//! - `SADD handled <entry id>`; an id already there also counts `INCR duplicates`;
//! - `RPUSH attempts:<entry id> <attempt>`, when the entry has a field `fail_times`;
//! - `RPUSH deliveries:<entry id> <count>`, first thing, when the entry has a field `group`:
//!   the delivery count that group's pending list holds for the entry as its handler starts.
//!
//! - `RPUSH tries:<key> <attempt>`, when the entry has a field `key` (which, unlike the id, stays
//!   the same when the entry comes back from the delayed set).
//!
//! The entry's fields steer it: `fail_times = n` fails the first `n` attempts; a payload of
//! `fail` always fails; `sleep_ms = n` works for `n` ms first (a handler busy at shutdown);
//! `retry_after_ms = d` with `retry_times = n` asks for the first `n` attempts to be tried again
//! after `d` ms (`Outcome::RetryAfter`); `dead_letter = reason` sends it to the dead-letter
//! stream (`Outcome::DeadLetter`).

use std::time::Duration;

use spin_trigger_sdk::redis::{Connection, Message, Outcome, Parameter, Value};
use spin_trigger_sdk::{redis_component, variables};

#[redis_component]
fn on_entry(message: Message) -> anyhow::Result<Outcome> {
    let entry = message
        .entry
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("not a stream entry: channel `{}`", message.channel))?;
    let number = |name: &str| -> anyhow::Result<Option<u32>> {
        entry
            .field(name)
            .map(|value| Ok(std::str::from_utf8(value)?.parse()?))
            .transpose()
    };
    let redis = Connection::open(&variables::get("redis_address")?)?;
    if let Some(group) = entry.field("group") {
        let id = Parameter::Binary(entry.id.clone().into_bytes());
        let pending = redis.execute(
            "XPENDING",
            &[
                Parameter::Binary(message.channel.clone().into_bytes()),
                Parameter::Binary(group.to_vec()),
                id.clone(),
                id,
                Parameter::Int64(1),
            ],
        )?;
        // One pending entry's reply, flattened: id, consumer, idle time, delivery count.
        let Some(Value::Int64(count)) = pending.last() else {
            anyhow::bail!("no delivery count in {pending:?}");
        };
        redis.execute(
            "RPUSH",
            &[
                Parameter::Binary(format!("deliveries:{}", entry.id).into_bytes()),
                Parameter::Int64(*count),
            ],
        )?;
    }
    if let Some(sleep_ms) = number("sleep_ms")? {
        std::thread::sleep(std::time::Duration::from_millis(sleep_ms.into()));
    }
    if let Some(key) = entry.field("key") {
        let mut list = b"tries:".to_vec();
        list.extend_from_slice(key);
        redis.execute(
            "RPUSH",
            &[
                Parameter::Binary(list),
                Parameter::Int64(entry.attempt.into()),
            ],
        )?;
    }
    if let Some(reason) = entry.field("dead_letter") {
        return Ok(Outcome::DeadLetter(
            String::from_utf8_lossy(reason).into_owned(),
        ));
    }
    if let (Some(delay), Some(times)) = (number("retry_after_ms")?, number("retry_times")?)
        && entry.attempt <= times
    {
        return Ok(Outcome::RetryAfter(Duration::from_millis(delay.into())));
    }
    if let Some(fail_times) = number("fail_times")? {
        let key = format!("attempts:{}", entry.id);
        let attempt = entry.attempt.to_string();
        redis.execute(
            "RPUSH",
            &[
                Parameter::Binary(key.into_bytes()),
                Parameter::Binary(attempt.into_bytes()),
            ],
        )?;
        anyhow::ensure!(
            entry.attempt > fail_times,
            "failing attempt {}",
            entry.attempt
        );
    }
    anyhow::ensure!(message.payload != b"fail", "asked to fail");
    if redis.sadd("handled", &[&entry.id])? == 0 {
        redis.incr("duplicates")?;
    }
    Ok(Outcome::Handled)
}
