// A batch handler marks entries to retry later or dead-letter now; it returns as before.
use std::time::Duration;

use spin_trigger_sdk::redis::Batch;
use spin_trigger_sdk::redis_component;

#[redis_component]
async fn handle(batch: Batch) -> anyhow::Result<()> {
    for message in &batch {
        match message.payload.as_slice() {
            b"later" => batch.retry_after(message, Duration::from_millis(500)),
            b"poison" => batch.dead_letter(message, "poisoned"),
            _ => {}
        }
    }
    Ok(())
}

fn main() {}
