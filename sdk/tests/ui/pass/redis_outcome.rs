// A handler taking the whole message may decide its outcome: `Outcome`, or `Result<Outcome, E>`.
use std::time::Duration;

use spin_trigger_sdk::redis::{Message, Outcome};
use spin_trigger_sdk::redis_component;

#[redis_component]
fn handle(message: Message) -> anyhow::Result<Outcome> {
    if message.payload.is_empty() {
        return Ok(Outcome::DeadLetter("an empty order".into()));
    }
    Ok(Outcome::RetryAfter(Duration::from_secs(2)))
}

fn main() {}
