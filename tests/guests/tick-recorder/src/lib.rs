//! A test guest for the coordination tests: on each tick it records the tick's scheduled time
//! (Unix milliseconds) through outbound Redis at its `redis_address` variable — `SADD ticks
//! <ms>`, and `INCR runs:<ms>` to count how many times that tick ran — then prints
//! `recorded <ms>`.

use std::time::UNIX_EPOCH;

use spin_trigger_sdk::redis::Connection;
use spin_trigger_sdk::{timer::Tick, timer_component, variables};

#[timer_component]
fn record(tick: Tick) -> Result<(), String> {
    let address = variables::get("redis_address").map_err(|error| error.to_string())?;
    let scheduled = tick
        .scheduled_at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        .to_string();
    let connection = Connection::open(&address).map_err(|error| error.to_string())?;
    connection
        .sadd("ticks", &[&scheduled])
        .map_err(|error| error.to_string())?;
    connection
        .incr(&format!("runs:{scheduled}"))
        .map_err(|error| error.to_string())?;
    println!("recorded {scheduled}");
    Ok(())
}
